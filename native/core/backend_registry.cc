// The backend registry (see rrec/backend_registry.h): the built-in CPU backend plus libraries
// loaded with dlopen. Each library is opened once (RTLD_NOW | RTLD_LOCAL, so its symbols cannot
// clash with the addon's) and kept loaded for the life of the process.
#include "rrec/backend_registry.h"

#include <dirent.h>
#include <dlfcn.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "rrec/errors.h"

// The one line of the core that knows the CPU backend exists (native/cpu/backend_cpu.cc).
extern "C" const rrec_backend_reg* rrec_cpu_backend_reg(uint32_t hostAbi);

namespace rrec {

namespace {

struct Entry {
  BackendListing listing;
  const rrec_backend_reg* reg = nullptr;  // null when unavailable before registration
  std::shared_ptr<void> library;          // the dlopen handle (null for the CPU)
};

struct Registry {
  std::mutex mu;
  bool scanned = false;
  std::vector<Entry> entries;
  std::vector<std::string> searched;
};

Registry& registry() {
  static Registry* r = new Registry();  // never destroyed: backends may be closed during exit
  return *r;
}

std::string dirOf(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

std::string baseOf(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool isDir(const std::string& p) {
  struct stat s;
  return stat(p.c_str(), &s) == 0 && S_ISDIR(s.st_mode);
}

// librrec_cuda_emu.so -> "rrec_cuda_emu"; "" when the name does not follow the pattern
std::string stemOf(const std::string& file) {
  const std::string b = baseOf(file);
  if (b.size() <= 11 || b.compare(0, 8, "librrec_") != 0 || b.compare(b.size() - 3, 3, ".so") != 0) return "";
  return b.substr(3, b.size() - 6);
}

// Fills in the listing of a registered table: device count and availability.
void probe(Entry& e) {
  rrec_status st;
  st.code = RREC_OK;
  st.message[0] = '\0';
  const int32_t n = e.reg->device_count(&st);
  st.message[sizeof st.message - 1] = '\0';
  e.listing.devices = n > 0 ? n : 0;
  e.listing.available = n > 0;
  if (n <= 0) e.listing.reason = st.message[0] ? st.message : "no device";
  const char* info = e.reg->info_json ? e.reg->info_json() : nullptr;
  e.listing.infoJson = info && info[0] ? info : "{}";
}

// Loads one library into the registry (mu held); returns its entry index.
size_t loadLibrary(Registry& r, const std::string& path) {
  for (size_t i = 0; i < r.entries.size(); i++)
    if (r.entries[i].listing.library == path) return i;
  Entry e;
  e.listing.library = path;
  const std::string stem = stemOf(path);
  std::string guess = stem.size() > 5 ? stem.substr(5) : baseOf(path);
  std::replace(guess.begin(), guess.end(), '_', '-');
  e.listing.name = guess;
  auto finish = [&](const std::string& reason) {
    e.listing.available = false;
    e.listing.reason = reason;
    r.entries.push_back(std::move(e));
    return r.entries.size() - 1;
  };
  if (stem.empty()) return finish("the file name must be librrec_<name>.so");
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char* err = dlerror();
    return finish(std::string("library failed to load: ") + (err ? err : "unknown dlopen error"));
  }
  e.library = std::shared_ptr<void>(h, [](void*) {});  // kept loaded: tables and contexts live in it
  const std::string sym = stem + "_backend_reg";
  auto fn = reinterpret_cast<rrec_backend_reg_fn>(dlsym(h, sym.c_str()));
  if (!fn) return finish("the library does not export " + sym);
  const rrec_backend_reg* reg = fn(RREC_BACKEND_ABI_VERSION);
  if (!reg) return finish("the library does not support backend ABI version " + std::to_string(RREC_BACKEND_ABI_VERSION));
  if (reg->abi_version != RREC_BACKEND_ABI_VERSION)
    return finish("the library was built for backend ABI version " + std::to_string(reg->abi_version) + ", this addon uses " +
                  std::to_string(RREC_BACKEND_ABI_VERSION));
  if (reg->struct_size < sizeof(rrec_backend_reg) || !reg->name || !reg->device_count || !reg->open)
    return finish("the library's registration table is incomplete (struct_size " + std::to_string(reg->struct_size) + ")");
  e.listing.name = reg->name;
  for (const Entry& other : r.entries)
    if (other.reg && other.listing.name == e.listing.name)
      return finish("a backend named \"" + e.listing.name + "\" is already registered from " +
                    (other.listing.library.empty() ? std::string("the addon") : other.listing.library));
  e.reg = reg;
  probe(e);
  r.entries.push_back(std::move(e));
  return r.entries.size() - 1;
}

void scanFolder(Registry& r, const std::string& dir) {
  r.searched.push_back(dir);
  DIR* d = opendir(dir.c_str());
  if (!d) return;
  std::vector<std::string> files;
  while (dirent* de = readdir(d)) {
    const std::string name = de->d_name;
    if (!stemOf(name).empty()) files.push_back(dir + "/" + name);
  }
  closedir(d);
  std::sort(files.begin(), files.end());
  for (const std::string& f : files) loadLibrary(r, f);
}

void scan(Registry& r) {
  if (r.scanned) return;
  r.scanned = true;
  Entry cpu;
  cpu.reg = rrec_cpu_backend_reg(RREC_BACKEND_ABI_VERSION);
  cpu.listing.name = "cpu";
  probe(cpu);
  r.entries.push_back(std::move(cpu));
  // next to the binary holding this code (the addon, or a test executable)
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&scan), &info) && info.dli_fname) scanFolder(r, dirOf(info.dli_fname));
  if (const char* env = std::getenv("RREC_BACKEND_PATH")) {
    std::string list = env;
    size_t start = 0;
    while (start <= list.size()) {
      const size_t colon = list.find(':', start);
      const std::string item = list.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
      if (!item.empty()) {
        // a folder is scanned; a library file (or a name that says it is one) is loaded, its
        // absence reported; anything else that does not exist is just a folder not there
        if (isDir(item)) scanFolder(r, item);
        else if (!stemOf(item).empty()) loadLibrary(r, item);
        else r.searched.push_back(item);
      }
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
  }
}

}  // namespace

std::vector<BackendListing> listBackends() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  scan(r);
  std::vector<BackendListing> out;
  for (const Entry& e : r.entries) out.push_back(e.listing);
  return out;
}

BackendListing addBackendLibrary(const std::string& path) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  scan(r);
  return r.entries[loadLibrary(r, path)].listing;
}

std::vector<std::string> backendSearchPath() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  scan(r);
  return r.searched;
}

std::shared_ptr<Backend> openDevice(const std::string& deviceIn) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  scan(r);
  std::string device = deviceIn.empty() ? "auto" : deviceIn;
  std::string name = device;
  int index = 0;
  const size_t colon = device.find(':');
  if (colon != std::string::npos) {
    name = device.substr(0, colon);
    const std::string num = device.substr(colon + 1);
    char* end = nullptr;
    const long v = std::strtol(num.c_str(), &end, 10);
    if (num.empty() || *end != '\0' || v < 0 || v > 1024)
      throw ArgumentError("device \"" + device + "\": the device index after ':' must be a number >= 0");
    index = static_cast<int>(v);
  }
  if (name == "auto") {
    name = "cpu";
    for (const Entry& e : r.entries)
      if (e.listing.name == "cuda" && e.listing.available && e.reg) name = "cuda";
  }
  const Entry* found = nullptr;
  for (const Entry& e : r.entries)
    if (e.listing.name == name && (e.reg || !found)) found = &e;
  if (!found) {
    std::string where;
    for (const std::string& s : r.searched) where += (where.empty() ? "" : ", ") + s;
    std::string known;
    for (const Entry& e : r.entries) known += (known.empty() ? "" : ", ") + e.listing.name;
    throw ArgumentError("device \"" + device + "\" is not available: no backend named \"" + name + "\" was found (library librrec_" + name +
                        ".so looked for in " + (where.empty() ? std::string("no folder") : where) +
                        " and RREC_BACKEND_PATH; backends found: " + known + ")");
  }
  if (!found->reg || !found->listing.available)
    throw ArgumentError("device \"" + device + "\" is not available: " + found->listing.reason +
                        (found->listing.library.empty() ? "" : " (" + found->listing.library + ")"));
  if (index >= found->listing.devices)
    throw ArgumentError("device \"" + device + "\" is not available: the " + name + " backend has " + std::to_string(found->listing.devices) +
                        " device" + (found->listing.devices == 1 ? "" : "s"));
  const rrec_backend_i* iface = nullptr;
  void* ctx = nullptr;
  rrec_status st;
  st.code = RREC_OK;
  st.message[0] = '\0';
  if (found->reg->open(index, &iface, &ctx, &st) != RREC_OK || !iface)
    throw ArgumentError("device \"" + device + "\" could not be opened: " + (st.message[0] ? std::string(st.message) : std::string("open failed")));
  if (iface->abi_version != RREC_BACKEND_ABI_VERSION || iface->struct_size < sizeof(rrec_backend_i)) {
    if (iface->close) iface->close(ctx);
    throw ArgumentError("device \"" + device + "\": its backend table has ABI version " + std::to_string(iface->abi_version) + ", size " +
                        std::to_string(iface->struct_size) + "; this addon needs version " + std::to_string(RREC_BACKEND_ABI_VERSION));
  }
  return std::make_shared<Backend>(name, index, iface, ctx, found->library);
}

}  // namespace rrec
