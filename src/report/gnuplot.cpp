#include "idprune/report/gnuplot.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <limits>
#include <sstream>

#include "idprune/io/file.hpp"
#include "idprune/la/error.hpp"

extern char** environ;

namespace idprune::report {

namespace {

// A pipe's two ends, closed at scope exit.
struct Pipe {
  std::array<int, 2> fd{-1, -1};
  Pipe() { require(::pipe(fd.data()) == 0, "run_process: pipe() failed: ", std::strerror(errno)); }
  ~Pipe() {
    for (int f : fd)
      if (f >= 0) ::close(f);
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  void close_end(int i) {
    ::close(fd[i]);
    fd[i] = -1;
  }
};

struct SpawnActions {
  posix_spawn_file_actions_t actions{};
  SpawnActions() { posix_spawn_file_actions_init(&actions); }
  ~SpawnActions() { posix_spawn_file_actions_destroy(&actions); }
  SpawnActions(const SpawnActions&) = delete;
  SpawnActions& operator=(const SpawnActions&) = delete;
};

// Quotes `s` as a gnuplot single-quoted string (no escapes inside except '' for ').
std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "''";
    else if (c == '\n')
      out += ' ';
    else
      out += c;
  }
  return out + "'";
}

bool valid_name(const std::string& name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  });
}

// Whether a value can be drawn on an axis (finite, and > 0 on a log axis).
bool drawable(double v, bool log_axis) { return std::isfinite(v) && (!log_axis || v > 0.0); }

// Smallest and largest positive finite value on one axis (lo > hi when there is none).
std::pair<double, double> positive_range(const Plot& plot, bool x_axis) {
  double lo = std::numeric_limits<double>::infinity();
  double hi = 0.0;
  for (const auto& s : plot.series)
    for (double v : x_axis ? s.x : s.y)
      if (v > 0.0 && std::isfinite(v)) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
  return {lo, hi};
}

std::string tic_label(double v) {
  std::ostringstream os;
  if (v >= 1.0 && v < 1e9 && std::floor(v) == v) {
    os << std::fixed << std::setprecision(0) << v;
  } else {
    os << std::setprecision(3) << v;
  }
  return os.str();
}

// Settings of a logarithmic axis: a range padded by a few percent of its span (gnuplot's
// autoscale would widen it to whole decades, leaving most of a short range empty), and tick marks
// at powers of ten when the data spans three decades or more, else at 1-2-5 (or 1..9) multiples.
void log_axis(std::ostream& os, const Plot& plot, const char* axis, bool x_axis, double floor) {
  os << "set logscale " << axis << " 10\n";
  auto [lo, hi] = positive_range(plot, x_axis);
  if (floor > 0.0 && lo < floor && floor < hi) lo = floor;
  if (!(lo <= hi)) return;
  const double decades = std::log10(hi / lo);
  const double pad = std::pow(10.0, 0.04 * std::max(decades, 0.5));
  const double from = lo / pad;
  const double to = hi * pad;
  os << std::setprecision(std::numeric_limits<double>::max_digits10) << "set " << axis << "range [" << from << ":" << to
     << "]\n";
  if (decades >= 3.0) {
    os << "set format " << axis << " '10^{%L}'\n";
    os << "set m" << axis << "tics 10\n";
    return;
  }
  std::vector<double> tics;
  // A few distinct sizes on the x axis (a scaling study): tick marks at exactly those.
  if (x_axis) {
    for (const auto& ser : plot.series)
      for (double v : ser.x)
        if (v > 0.0 && std::isfinite(v) && std::find(tics.begin(), tics.end(), v) == tics.end()) tics.push_back(v);
    std::sort(tics.begin(), tics.end());
  }
  if (tics.size() > 8) tics.clear();
  for (const auto& mantissas : {std::vector<double>{1, 2, 5}, std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8, 9}}) {
    if (tics.size() >= 2) break;  // the data's own values
    tics.clear();
    for (int e = static_cast<int>(std::floor(std::log10(from))); e <= static_cast<int>(std::ceil(std::log10(to))); ++e)
      for (double m : mantissas) {
        const double v = m * std::pow(10.0, e);
        if (v >= from && v <= to) tics.push_back(v);
      }
    if (tics.size() >= 3) break;
  }
  os << "set " << axis << "tics (";
  for (std::size_t i = 0; i < tics.size(); ++i)
    os << (i ? ", " : "") << "'" << tic_label(tics[i]) << "' " << std::setprecision(17) << tics[i];
  os << ")\nset m" << axis << "tics default\n";
}

void write_file(const std::filesystem::path& path, const std::string& text) {
  io::write_file_atomically(path.string(), text);
}

}  // namespace

ProcessResult run_process(const std::vector<std::string>& argv, const std::filesystem::path& cwd) {
  require(!argv.empty(), "run_process: empty command");
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  Pipe out;
  SpawnActions fa;
  posix_spawn_file_actions_addopen(&fa.actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa.actions, out.fd[1], 1);
  posix_spawn_file_actions_adddup2(&fa.actions, out.fd[1], 2);
  posix_spawn_file_actions_addclose(&fa.actions, out.fd[0]);
  posix_spawn_file_actions_addclose(&fa.actions, out.fd[1]);
  const std::string dir = cwd.string();
  posix_spawn_file_actions_addchdir_np(&fa.actions, dir.c_str());

  pid_t pid = -1;
  // glibc's posix_spawnp reports a failed exec (program not found) as its return value.
  const int rc = ::posix_spawnp(&pid, args[0], &fa.actions, nullptr, args.data(), environ);
  require(rc == 0, "cannot run '", argv[0], "' in '", dir, "': ", std::strerror(rc));
  out.close_end(1);

  ProcessResult result;
  std::array<char, 4096> buf{};
  while (true) {
    const ssize_t n = ::read(out.fd[0], buf.data(), buf.size());
    if (n > 0) {
      result.output.append(buf.data(), static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    require(errno == EINTR, "run_process: waitpid failed for '", argv[0], "': ", std::strerror(errno));
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

std::string gnuplot_data(const Plot& plot) {
  std::ostringstream os;
  os << std::setprecision(std::numeric_limits<double>::max_digits10);
  os << "# " << plot.title << "\n# x: " << plot.xlabel << "\n# y: " << plot.ylabel << "\n";
  for (std::size_t i = 0; i < plot.series.size(); ++i) {
    const Series& s = plot.series[i];
    require(s.x.size() == s.y.size(), "gnuplot_data: series '", s.title, "' of plot '", plot.name, "' has ", s.x.size(),
            " x values and ", s.y.size(), " y values");
    if (i > 0) os << "\n\n";
    os << "# index " << i << ": " << s.title << "\n";
    for (std::size_t j = 0; j < s.x.size(); ++j) {
      const auto value = [&](double v, bool log_axis) {
        if (drawable(v, log_axis)) {
          os << v;
        } else {
          os << "NaN";
        }
      };
      value(s.x[j], plot.logx);
      os << ' ';
      value(s.y[j], plot.logy);
      os << '\n';
    }
  }
  return os.str();
}

std::string gnuplot_script(const Plot& plot, const std::string& terminal, int width, int height) {
  require(valid_name(plot.name), "gnuplot_script: bad figure name '", plot.name, "' (letters, digits, - and _)");
  require(!plot.series.empty(), "gnuplot_script: plot '", plot.name, "' has no series");
  const std::string ext = terminal == "svg" ? "svg" : "png";
  std::ostringstream os;
  os << "# idprune report figure: " << plot.title << "\n"
     << "# Re-draw with `gnuplot " << plot.name << ".gp` in this folder (reads " << plot.name << ".dat).\n"
     << "reset\n";
  if (terminal == "pngcairo") {
    os << "set terminal pngcairo size " << width << "," << height << " enhanced font 'DejaVu Sans,12' linewidth 1.5\n";
  } else if (terminal == "png") {
    os << "set terminal png size " << width << "," << height << " enhanced\n";
  } else if (terminal == "svg") {
    os << "set terminal svg size " << width << "," << height
       << " enhanced font 'DejaVu Sans,12' linewidth 1.5 background rgb 'white'\n";
  } else {
    throw Error(detail::concat("gnuplot_script: unknown terminal '", terminal, "'"));
  }
  os << "set output " << quoted(plot.name + "." + ext) << "\n"
     << "set encoding utf8\n"
     << "set title " << quoted(plot.title) << " noenhanced\n"
     << "set xlabel " << quoted(plot.xlabel) << " noenhanced\n"
     << "set ylabel " << quoted(plot.ylabel) << " noenhanced\n"
     << "set grid xtics ytics mxtics mytics lt 1 lc rgb '#c8c8c8' lw 0.6, lt 1 lc rgb '#ececec' lw 0.4\n"
     // A key below the plot is drawn without a box: its frame would cut through the x label.
     << "set key " << plot.key << (plot.key.rfind("below", 0) == 0 ? " nobox" : " box opaque")
     << " samplen 2 spacing 1.1\n"
     << "set datafile missing 'NaN'\n"
     // Okabe-Ito colours (distinguishable with colour-vision deficiencies), no pale yellow.
     << "set linetype 1 lc rgb '#0072B2'\nset linetype 2 lc rgb '#D55E00'\nset linetype 3 lc rgb '#009E73'\n"
     << "set linetype 4 lc rgb '#CC79A7'\nset linetype 5 lc rgb '#E69F00'\nset linetype 6 lc rgb '#56B4E9'\n"
     << "set linetype 7 lc rgb '#000000'\nset linetype 8 lc rgb '#999999'\nset linetype cycle 8\n";
  if (!plot.logx && !plot.xtics.empty()) {
    const auto [lo, hi] = std::minmax_element(plot.xtics.begin(), plot.xtics.end());
    require(plot.xtic_labels.empty() || plot.xtic_labels.size() == plot.xtics.size(), "gnuplot_script: plot '",
            plot.name, "' has ", plot.xtic_labels.size(), " tic labels for ", plot.xtics.size(), " tics");
    os << "set xrange [" << *lo - 0.5 << ":" << *hi + 0.5 << "]\nset xtics (";
    for (std::size_t i = 0; i < plot.xtics.size(); ++i) {
      os << (i ? ", " : "");
      if (!plot.xtic_labels.empty()) os << quoted(plot.xtic_labels[i]) << " ";
      os << plot.xtics[i];
    }
    os << ")" << (plot.xtic_labels.empty() ? "" : " noenhanced") << "\nunset mxtics\n";
  }
  const bool bars =
      std::any_of(plot.series.begin(), plot.series.end(), [](const Series& s) { return s.style == "boxes"; });
  if (bars) {
    os << "set style fill solid 0.75 border -1\nset boxwidth 0.6\n";
    if (!plot.logy) os << "set yrange [0:*]\n";  // bars start at zero
  }
  // Room above the highest point, so that a line at the top (an original model's accuracy) is not
  // hidden in the border.
  if (!plot.logy && !bars) os << "set offsets 0, 0, graph 0.04, 0\n";
  if (plot.logx) log_axis(os, plot, "x", true, 0.0);
  if (plot.logy) log_axis(os, plot, "y", false, plot.ymin);
  // Distinct point types, so curves stay apart in grey print as well.
  static constexpr std::array<int, 15> point_types{7, 5, 9, 11, 13, 15, 1, 2, 3, 4, 6, 8, 10, 12, 14};
  os << "plot ";
  for (std::size_t i = 0; i < plot.series.size(); ++i) {
    const Series& s = plot.series[i];
    if (i > 0) os << ", \\\n     ";
    os << quoted(plot.name + ".dat") << " index " << i << " using 1:2 with " << s.style << " lw 2";
    // Smaller markers on long curves, so that the line stays visible between them.
    if (s.style != "lines" && s.style != "boxes")
      os << " pt " << (s.point_type > 0 ? s.point_type : point_types[i % point_types.size()]) << " ps "
         << (s.point_size > 0  ? std::to_string(s.point_size)
             : s.x.size() > 40 ? "0.6"
                               : "1.0");
    if (!s.color.empty()) os << " lc rgb " << quoted(s.color);
    // Colours repeat after 8 curves: later curves are dashed.
    if (!s.dash.empty()) {
      os << " dt " << s.dash;
    } else if (i >= 8) {
      os << " dt 2";
    }
    os << " title " << quoted(s.title) << " noenhanced";
  }
  os << "\nunset output\n";
  return os.str();
}

Gnuplot::Gnuplot(GnuplotOptions options) : options_(std::move(options)) {
  require(options_.format == "auto" || options_.format == "png" || options_.format == "svg", "report: image format '",
          options_.format, "' (expected auto, png or svg)");
  require(options_.width >= 200 && options_.height >= 150, "report: figure size ", options_.width, "x", options_.height,
          " is too small (at least 200x150)");
  ProcessResult probe;
  try {
    probe = run_process({options_.executable, "-e", "print GPVAL_TERMINALS"}, std::filesystem::current_path());
  } catch (const Error& e) {
    throw Error(detail::concat("report: gnuplot is needed to draw the figures but '", options_.executable,
                               "' cannot be run (", e.what(),
                               "); install it (Debian: apt-get install gnuplot-nox) or pass --gnuplot PATH"));
  }
  require(probe.exit_code == 0, "report: '", options_.executable, " -e \"print GPVAL_TERMINALS\"' failed (exit ",
          probe.exit_code, "): ", probe.output);
  std::istringstream words(probe.output);
  std::vector<std::string> terminals;
  for (std::string w; words >> w;) terminals.push_back(w);
  const auto has = [&](const char* t) { return std::find(terminals.begin(), terminals.end(), t) != terminals.end(); };
  for (const char* t : {"pngcairo", "png", "svg"}) {
    const bool is_png = std::string(t) != "svg";
    if (!has(t)) continue;
    if (options_.format == "auto" || (options_.format == "png") == is_png) {
      terminal_ = t;
      format_ = is_png ? ImageFormat::png : ImageFormat::svg;
      break;
    }
  }
  require(!terminal_.empty(), "report: gnuplot '", options_.executable, "' has no ",
          options_.format == "auto" ? "png or svg" : options_.format, " terminal (it has: ", probe.output, ")");
}

std::string Gnuplot::render(const Plot& plot, const std::filesystem::path& dir) const {
  return render_all({plot}, dir).front();
}

std::vector<std::string> Gnuplot::render_all(const std::vector<Plot>& plots, const std::filesystem::path& dir) const {
  std::vector<std::string> argv{options_.executable};
  std::vector<std::string> images;
  for (const Plot& plot : plots) {
    const std::string script =
        gnuplot_script(plot, terminal_, options_.width,
                       static_cast<int>(std::lround(options_.height * std::clamp(plot.height_scale, 0.5, 4.0))));
    write_file(dir / (plot.name + ".dat"), gnuplot_data(plot));
    write_file(dir / (plot.name + ".gp"), script);
    images.push_back(plot.name + "." + extension());
    std::error_code ec;
    std::filesystem::remove(dir / images.back(), ec);
    argv.push_back(plot.name + ".gp");
  }
  if (plots.empty()) return images;
  // One process for all figures: gnuplot's start-up (fonts) costs more than drawing a figure.
  const ProcessResult r = run_process(argv, dir);
  require(r.exit_code == 0, "report: gnuplot failed in '", dir.string(), "' (exit ", r.exit_code, "):\n", r.output);
  for (const std::string& image : images) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(dir / image, ec);
    if (!ec && size > 0) continue;
    // Most often the file system, not gnuplot: say so when it is the cause.
    const std::string cause = io::write_failure_cause(dir.string());
    throw Error(detail::concat("report: cannot write '", (dir / image).string(), "'",
                               cause.empty() ? std::string(" (gnuplot wrote no image)") : ": " + cause,
                               r.output.empty() ? "" : "; gnuplot said:\n", r.output));
  }
  return images;
}

}  // namespace idprune::report
