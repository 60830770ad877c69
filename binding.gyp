{
  # node-gyp build of the addon (what `npm install` runs when no prebuilt binary matches).
  # CMakeLists.txt builds the same sources with cmake-js and adds the CUDA backend.
  "variables": {
    # -march for every file; native by default (a build from source is for this machine). The
    # matmul kernels are compiled for AVX-512 regardless and chosen at run time (cpuid), so a
    # portable build (`npm run prebuild` uses RREC_MARCH=x86-64-v2) still runs them where the CPU
    # has AVX-512 and falls back to the portable loops elsewhere.
    "rrec_march%": "<!(node -p \"process.env.RREC_MARCH || 'native'\")"
  },
  "targets": [
    {
      "target_name": "rrec_emotion",
      # every .cc under native/core, native/cpu and native/addon (CMakeLists.txt globs the same)
      "sources": [
        "<!@(node -p \"['core','cpu','addon'].flatMap(d => require('fs').readdirSync('native/' + d).filter(f => f.endsWith('.cc')).sort().map(f => 'native/' + d + '/' + f)).join(' ')\")"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native/include",
        "native"
      ],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NAPI_CPP_EXCEPTIONS", "RREC_VERSION=\"0.1.0\""],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-O3", "-march=<(rrec_march)", "-fno-math-errno", "-fno-trapping-math", "-fopenmp", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "ldflags": ["-pthread", "-fopenmp"],
      "conditions": [
        ["OS=='mac'", {
          "xcode_settings": {
            "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
            "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
            "OTHER_CPLUSPLUSFLAGS": ["-O3"]
          }
        }],
        ["OS=='win'", {
          "msvs_settings": { "VCCLCompilerTool": { "ExceptionHandling": 1, "AdditionalOptions": ["/std:c++17"] } }
        }]
      ]
    }
  ]
}
