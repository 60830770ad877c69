// The backends this process can use: the built-in CPU backend, and backend libraries found at
// run time (librrec_<name>.so next to the addon binary, in the folders or files listed by
// RREC_BACKEND_PATH, or added with addBackendLibrary). A library that is missing, fails to load,
// has another ABI version or reports no device is listed with the reason; it never stops the CPU
// backend from working.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "rrec/backend.h"

namespace rrec {

struct BackendListing {
  std::string name;      // "cpu", "cuda", "cuda-emu", ...
  std::string library;   // the shared library's path; "" for the built-in CPU backend
  bool available = false;
  std::string reason;    // why not available (empty when it is)
  int devices = 0;
  std::string infoJson;  // the library's build description (rrec_backend_reg::info_json), "{}" if none
};

// Every backend found so far, the CPU first. Scans for libraries on the first call.
std::vector<BackendListing> listBackends();

// Loads one more backend library (a path to librrec_<name>.so) and returns its listing (which
// says why when it cannot be used). Loading the same file twice returns the first listing.
BackendListing addBackendLibrary(const std::string& path);

// Opens a device: "cpu", "cuda", "cuda:N", any listed backend name (optionally ":N"), or "auto"
// (the first available CUDA device, else the CPU). Throws ArgumentError naming the device and why
// it cannot be used.
std::shared_ptr<Backend> openDevice(const std::string& device);

// The folders that were searched for backend libraries (for error messages).
std::vector<std::string> backendSearchPath();

}  // namespace rrec
