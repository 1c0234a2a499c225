// Load a kolmo closure exported as an AOTInductor package (kolmo export --format aoti, a .pt2 file)
// and call it on a coarse vorticity field, as a host solver would every step.
// Usage: run_closure_aoti CLOSURE.pt2 [B]
//
// Contract (see coupling/artifact.py and coupling/aoti.py): the package's model "model" is
// sample(omega[B,N,N], noise) -> closure tendency [B,N,N], compiled for one device and dtype with a
// dynamic batch B in metadata "batch_range". There is no noise_shape() method and no forward(): the
// host draws the noise itself, of shape metadata "noise_dims" with -1 replaced by B. The metadata is
// the archive's extra/metadata.json (the same JSON a TorchScript artifact carries).
#include <torch/torch.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>

#include <cmath>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// The archive's extra/metadata.json (PyTorchStreamReader strips the archive's root folder).
std::string read_metadata(const std::string& path) {
  caffe2::serialize::PyTorchStreamReader reader(path);
  auto [data, size] = reader.getRecord("extra/metadata.json");
  return std::string(static_cast<const char*>(data.get()), size);
}

// The integers of `"key": 16` or `"key": [-1, 1, 16, 16]` in the metadata text. Enough for the two
// integer keys read here; a real host would use its JSON library.
std::vector<int64_t> ints_of(const std::string& text, const std::string& key) {
  auto at = text.find("\"" + key + "\"");
  if (at == std::string::npos) throw std::runtime_error("metadata.json lacks the key " + key);
  at = text.find(':', at) + 1;
  while (at < text.size() && text[at] == ' ') ++at;
  const auto end = text[at] == '[' ? text.find(']', at) : text.find_first_of(",}", at);
  std::vector<int64_t> out;
  const char* p = text.c_str() + at + (text[at] == '[' ? 1 : 0);
  const char* stop = text.c_str() + end;
  while (p < stop) {
    char* next = nullptr;
    const long long v = std::strtoll(p, &next, 10);
    if (next == p) { ++p; continue; }
    out.push_back(v);
    p = next;
  }
  if (out.empty()) throw std::runtime_error("metadata.json key " + key + " holds no integer");
  return out;
}

torch::Tensor noise_for(const std::vector<int64_t>& dims, int64_t batch) {
  std::vector<int64_t> shape(dims);
  for (auto& d : shape) d = d == -1 ? batch : d;
  return torch::randn(shape, torch::kFloat32);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: run_closure_aoti CLOSURE.pt2 [B]\n";
    return 2;
  }
  const std::string path = argv[1];
  const int64_t batch = argc > 2 ? std::stoll(argv[2]) : 1;

  std::string meta;
  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> closure;
  try {
    meta = read_metadata(path);
    closure = std::make_unique<torch::inductor::AOTIModelPackageLoader>(path, "model");
  } catch (const c10::Error& e) {
    std::cerr << "error: cannot load closure package " << path << ": " << e.what_without_backtrace() << "\n";
    return 1;
  }
  const int64_t n = ints_of(meta, "grid").at(0);
  const auto dims = ints_of(meta, "noise_dims");
  c10::InferenceMode inference;

  // a smooth coarse vorticity field: omega = sin(2 pi x) cos(2 pi y) on the unit square
  auto x = torch::arange(n, torch::kFloat32) / static_cast<double>(n);
  auto grid = torch::meshgrid({x, x}, "ij");
  auto omega = (torch::sin(2 * M_PI * grid[1]) * torch::cos(2 * M_PI * grid[0]))
                   .unsqueeze(0).expand({batch, n, n}).contiguous();

  // reproducible calls: the host draws the noise and passes it; the batch is dynamic (B, then 1)
  torch::manual_seed(0);
  torch::Tensor h = closure->run({omega, noise_for(dims, batch)})[0];
  torch::Tensor h1 = closure->run({omega.narrow(0, 0, 1).contiguous(), noise_for(dims, 1)})[0];

  const bool finite = torch::isfinite(h).all().item<bool>() && torch::isfinite(h1).all().item<bool>();
  std::cout << "metadata " << meta.size() << " bytes, grid " << n << ", noise_dims " << c10::IntArrayRef(dims) << "\n";
  std::cout << "output " << h.sizes() << " and " << h1.sizes() << " finite " << (finite ? "yes" : "no") << "\n";
  std::cout << "sum " << h.sum().item<double>() << " rms " << h.pow(2).mean().sqrt().item<double>() << "\n";
  return finite && h.sizes() == omega.sizes() && h1.size(0) == 1 ? 0 : 1;
}
