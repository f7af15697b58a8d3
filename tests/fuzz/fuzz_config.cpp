// libFuzzer target: the drivers' INI-style config files (`idprune COMMAND --config FILE`), parsed by
// app::parse with an option table of every value type the drivers use, then the list values parsed as
// the drivers do. A config that is accepted must survive resolved_config (what sweep and pareto
// write as DIR/config.ini) and parse back to the same values.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "idprune/app/options.hpp"

using namespace idprune;
namespace po = boost::program_options;

namespace {

// The shape of `idprune sweep`'s table (drivers/sweep.cpp) plus a multitoken list (report, bench-id).
po::options_description scalar_options() {
  po::options_description options("fuzz options");
  options.add_options()("model", po::value<std::string>()->required(), "")("grid", po::value<std::string>(), "")(
      "layers", po::value<std::string>()->default_value(""), "")("compression-size",
                                                                 po::value<long>()->default_value(2000), "")(
      "seed", po::value<unsigned long>()->default_value(1), "")("threads", po::value<int>()->default_value(0), "")(
      "progress-interval", po::value<double>()->default_value(30.0), "")("resume",
                                                                         po::bool_switch()->default_value(false), "");
  return options;
}

bool same_value(const po::variables_map& a, const po::variables_map& b, const std::string& name) {
  if (a.count(name) != b.count(name)) return false;
  if (a.count(name) == 0) return true;
  const boost::any& x = a[name].value();
  const boost::any& y = b[name].value();
  if (const auto* s = boost::any_cast<std::string>(&x)) return *s == boost::any_cast<std::string>(y);
  if (const auto* d = boost::any_cast<double>(&x)) {
    const double e = boost::any_cast<double>(y);
    return *d == e || (std::isnan(*d) && std::isnan(e));
  }
  if (const auto* l = boost::any_cast<long>(&x)) return *l == boost::any_cast<long>(y);
  if (const auto* u = boost::any_cast<unsigned long>(&x)) return *u == boost::any_cast<unsigned long>(y);
  if (const auto* i = boost::any_cast<int>(&x)) return *i == boost::any_cast<int>(y);
  if (const auto* f = boost::any_cast<bool>(&x)) return *f == boost::any_cast<bool>(y);
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static fuzz::MemFile file;
  static fuzz::MemFile again;
  const std::string& path = file.write(data, size);
  const po::options_description options = scalar_options();
  po::options_description with_list = scalar_options();
  with_list.add_options()("engine", po::value<std::vector<std::string>>()->multitoken(), "");

  // --model on the command line: a missing required option is then never the error, so every error
  // comes from the file and must name it.
  const std::vector<std::string> args{"--config", path, "--model", "m.safetensors"};
  po::variables_map listed;
  fuzz::reads_cleanly(path, [&] { app::parse("fuzz", "", with_list, args, listed); });

  po::variables_map vm;
  if (!fuzz::reads_cleanly(path, [&] { app::parse("fuzz", "", options, args, vm); })) return 0;
  for (const char* name : {"grid", "layers"}) {
    if (!vm.count(name)) continue;
    const std::string text = vm[name].as<std::string>();
    fuzz::reads_cleanly(name, [&] { (void)app::parse_doubles(text, name); });
    fuzz::reads_cleanly(name, [&] { (void)app::parse_integers(text, name); });
  }

  const std::string resolved = app::resolved_config("fuzz", options, vm);
  const std::string& path2 = again.write(reinterpret_cast<const std::uint8_t*>(resolved.data()), resolved.size());
  po::variables_map back;
  if (!fuzz::reads_cleanly(path2, [&] { app::parse("fuzz", "", options, {"--config", path2}, back); }))
    fuzz::check(false, "resolved_config wrote a config that does not parse");
  for (const auto& opt : options.options())
    fuzz::check(same_value(vm, back, opt->long_name()), "resolved_config does not round-trip a value");
  return 0;
}
