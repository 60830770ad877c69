// safetensors reading (validated, memory-mapped) and writing (atomic).
// Format: u64 little-endian header length N, N bytes of JSON
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}, then the data;
// offsets are relative to the first byte after the header.
#include "rrec/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>

#include "rrec/errors.h"
#include "rrec/json.h"
#include "rrec/safetensors_header.h"

namespace rrec {

std::string readTextFile(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw LoadError(path + ": cannot open (" + std::strerror(errno) + ")");
  std::string out;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  std::fclose(f);
  return out;
}

namespace {

bool fileExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string joinPath(const std::string& dir, const std::string& name) {
  if (dir.empty() || dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

}  // namespace

MappedFile::MappedFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw LoadError(path + ": cannot open (" + std::strerror(errno) + ")");
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    throw LoadError(path + ": cannot stat (" + std::strerror(e) + ")");
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      throw LoadError(path + ": cannot mmap (" + std::strerror(e) + ")");
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

std::string TensorView::shapeString() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); i++) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

void SafetensorsSet::addFile(const std::string& path, const std::string& display) {
  auto file = std::make_unique<MappedFile>(path);
  const uint8_t* base = file->data();
  const size_t size = file->size();
  // the project's one header validator (safetensors_header.cc), shared with the TypeScript reader
  const uint64_t n = safetensorsHeaderLength(display, base, size, size);
  const SafetensorsHeader header = parseSafetensorsHeader(display, base + 8, n, size);
  for (const auto& kv : header.metadata) metadata_[kv.first] = kv.second;
  for (const SafetensorsEntry& e : header.tensors) {
    TensorView tv;
    tv.name = e.name;
    tv.file = display;
    // model weights and adapters are floats; the header validator accepts every dtype of the format
    if (!parseDType(e.dtype, &tv.dtype) || (tv.dtype != DType::F32 && tv.dtype != DType::BF16 && tv.dtype != DType::F16 && tv.dtype != DType::F64))
      throw SafetensorsError(display, "dtype " + e.dtype + " is not a float dtype (F32, F16, BF16, F64)", e.name, true);
    tv.shape = e.shape;
    tv.data = base + header.dataStart + e.begin;
    tv.nbytes = e.end - e.begin;
    if (tensors_.count(e.name)) throw SafetensorsError(display, "appears in more than one file", e.name, true);
    tensors_[e.name] = std::move(tv);
  }
  files_.push_back(std::move(file));
}

std::unique_ptr<SafetensorsSet> SafetensorsSet::openFile(const std::string& path) {
  auto set = std::unique_ptr<SafetensorsSet>(new SafetensorsSet());
  set->addFile(path, path);
  return set;
}

std::unique_ptr<SafetensorsSet> SafetensorsSet::openDir(const std::string& dir) {
  auto set = std::unique_ptr<SafetensorsSet>(new SafetensorsSet());
  std::string single = joinPath(dir, "model.safetensors");
  std::string index = joinPath(dir, "model.safetensors.index.json");
  if (fileExists(single)) {
    set->addFile(single, single);
    return set;
  }
  if (!fileExists(index))
    throw LoadError(dir + ": no model.safetensors or model.safetensors.index.json (only safetensors checkpoints are supported)");
  Json idx;
  try {
    idx = Json::parse(readTextFile(index));
  } catch (const JsonError& e) {
    throw LoadError(index + ": " + e.what());
  }
  const Json* map = idx.find("weight_map");
  if (!map || !map->isObject()) throw LoadError(index + ": missing \"weight_map\" object");
  std::set<std::string> shards;
  for (const std::string& name : map->keys()) {
    const Json& f = *map->find(name);
    if (!f.isString()) throw LoadError(index + ": weight_map[\"" + name + "\"] is not a file name");
    const std::string& fn = f.string();
    if (fn.empty() || fn.find('/') != std::string::npos || fn.find('\\') != std::string::npos || fn == "." || fn == "..")
      throw LoadError(index + ": weight_map[\"" + name + "\"] = \"" + fn + "\" is not a plain file name in the folder");
    shards.insert(fn);
  }
  for (const std::string& fn : shards) {
    std::string p = joinPath(dir, fn);
    if (!fileExists(p)) throw LoadError(index + ": shard " + fn + " is listed but missing from " + dir);
    set->addFile(p, p);
  }
  for (const std::string& name : map->keys()) {
    const TensorView* tv = set->find(name);
    std::string want = joinPath(dir, map->find(name)->string());
    if (!tv) throw LoadError(index + ": tensor \"" + name + "\" is listed in weight_map but absent from " + want);
    if (tv->file != want) throw LoadError(index + ": tensor \"" + name + "\" is listed in " + want + " but stored in " + tv->file);
  }
  return set;
}

const TensorView* SafetensorsSet::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

std::vector<std::string> SafetensorsSet::names() const {
  std::vector<std::string> out;
  for (const auto& kv : tensors_) out.push_back(kv.first);
  return out;
}

namespace {

std::string jsonEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else out += c;
    }
  }
  return out;
}

void writeAll(int fd, const void* p, size_t n, const std::string& path) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    ssize_t w = ::write(fd, c, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw LoadError(path + ": write failed (" + std::strerror(errno) + ")");
    }
    c += w;
    n -= static_cast<size_t>(w);
  }
}

}  // namespace

void writeSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors, DType dtype,
                      const std::map<std::string, std::string>& metadata) {
  if (dtype != DType::F32 && dtype != DType::BF16)
    throw ArgumentError(std::string("writeSafetensors: cannot store dtype ") + dtypeName(dtype));
  std::string header = "{";
  bool first = true;
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool f2 = true;
    for (const auto& kv : metadata) {
      header += (f2 ? "" : ",") + std::string("\"") + jsonEscape(kv.first) + "\":\"" + jsonEscape(kv.second) + "\"";
      f2 = false;
    }
    header += "}";
    first = false;
  }
  size_t offset = 0;
  std::vector<size_t> sizes;
  for (const TensorToWrite& t : tensors) {
    size_t numel = 1;
    for (int64_t d : t.shape) numel *= static_cast<size_t>(d);
    size_t bytes = numel * dtypeSize(dtype);
    sizes.push_back(numel);
    header += (first ? "" : ",") + std::string("\"") + jsonEscape(t.name) + "\":{\"dtype\":\"" + dtypeName(dtype) + "\",\"shape\":[";
    for (size_t i = 0; i < t.shape.size(); i++) header += (i ? "," : "") + std::to_string(t.shape[i]);
    header += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + bytes) + "]}";
    offset += bytes;
    first = false;
  }
  header += "}";
  while (header.size() % 8 != 0) header += ' ';  // keeps the data 8-byte aligned

  std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw LoadError(tmp + ": cannot create (" + std::strerror(errno) + ")");
  try {
    uint8_t len[8];
    uint64_t n = header.size();
    for (int i = 0; i < 8; i++) len[i] = static_cast<uint8_t>(n >> (8 * i));
    writeAll(fd, len, 8, tmp);
    writeAll(fd, header.data(), header.size(), tmp);
    std::vector<uint8_t> buf;
    for (size_t ti = 0; ti < tensors.size(); ti++) {
      const float* src = tensors[ti].data;
      size_t numel = sizes[ti];
      buf.resize(numel * dtypeSize(dtype));
      for (size_t i = 0; i < numel; i++) {
        if (dtype == DType::F32) std::memcpy(&buf[4 * i], &src[i], 4);
        else {
          uint16_t h = f32ToBf16(src[i]);
          std::memcpy(&buf[2 * i], &h, 2);
        }
      }
      writeAll(fd, buf.data(), buf.size(), tmp);
    }
    if (::fsync(fd) != 0) throw LoadError(tmp + ": fsync failed (" + std::strerror(errno) + ")");
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    throw LoadError(path + ": rename from temp file failed (" + std::strerror(e) + ")");
  }
}

}  // namespace rrec
