// Load a kolmo closure artifact (TorchScript) and call it on a coarse vorticity field, as a
// host solver would every step. Usage: run_closure CLOSURE.pt N [B]
//
// Contract (see coupling/artifact.py): forward(omega[B,N,N]) -> closure tendency [B,N,N];
// sample(omega, noise) with noise of shape noise_shape(B) for reproducible calls;
// metadata.json is stored as a TorchScript extra file.
#include <torch/script.h>

#include <cmath>
#include <iostream>
#include <string>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: run_closure CLOSURE.pt N [B]\n";
    return 2;
  }
  const std::string path = argv[1];
  const int64_t n = std::stoll(argv[2]);
  const int64_t batch = argc > 3 ? std::stoll(argv[3]) : 1;

  torch::jit::ExtraFilesMap extra{{"metadata.json", ""}};
  torch::jit::script::Module closure;
  try {
    closure = torch::jit::load(path, torch::kCPU, extra);
  } catch (const c10::Error& e) {
    std::cerr << "error: cannot load closure artifact " << path << ": " << e.what_without_backtrace() << "\n";
    return 1;
  }
  closure.eval();
  torch::NoGradGuard no_grad;

  // a smooth coarse vorticity field: omega = sin(2 pi x) cos(2 pi y) on the unit square
  auto x = torch::arange(n, torch::kFloat32) / static_cast<double>(n);
  auto grid = torch::meshgrid({x, x}, "ij");
  auto omega = (torch::sin(2 * M_PI * grid[1]) * torch::cos(2 * M_PI * grid[0]))
                   .unsqueeze(0).expand({batch, n, n}).contiguous();

  // reproducible call: draw the noise here and pass it explicitly
  auto shape_ivalue = closure.get_method("noise_shape")({torch::jit::IValue(batch)});
  auto shape = shape_ivalue.toIntVector();
  torch::manual_seed(0);
  auto noise = torch::randn(shape, torch::kFloat32);
  torch::Tensor h = closure.get_method("sample")({omega, noise}).toTensor();
  torch::Tensor h2 = closure.forward({omega}).toTensor();

  const bool finite = torch::isfinite(h).all().item<bool>() && torch::isfinite(h2).all().item<bool>();
  std::cout << "metadata " << extra["metadata.json"].size() << " bytes\n";
  std::cout << "output " << h.sizes() << " finite " << (finite ? "yes" : "no") << "\n";
  std::cout << "sum " << h.sum().item<double>() << " rms " << h.pow(2).mean().sqrt().item<double>() << "\n";
  return finite && h.sizes() == omega.sizes() ? 0 : 1;
}
