#pragma once
// Figures of the report, drawn by gnuplot (no plotting code of our own): a Plot describes the
// curves and axes; render() writes NAME.dat (the numbers, one gnuplot data block per curve) and
// NAME.gp (the script) into a folder and runs `gnuplot NAME.gp` there, so that every figure can be
// re-drawn (or restyled) by running gnuplot on the files next to it.
#include <filesystem>
#include <string>
#include <vector>

namespace idprune::report {

/// One curve: points (x[i], y[i]). Non-finite values, and values <= 0 on a logarithmic axis, are
/// written as NaN, which gnuplot skips.
struct Series {
  std::string title;  ///< legend entry (shown as is, no enhanced-text markup)
  std::vector<double> x;
  std::vector<double> y;
  std::string style = "linespoints";  ///< gnuplot `with` style: linespoints, lines, points, boxes (bars)
  std::string dash;                   ///< gnuplot dashtype, e.g. "2" for dashed; empty = solid
  std::string color = "";             ///< e.g. "#555555"; empty: the next colour of the cycle
  int point_type = 0;                 ///< gnuplot pt; 0: the next of the cycle
  double point_size = 0.0;            ///< gnuplot ps; 0: by the number of points
};

struct Plot {
  std::string name;  ///< file stem (letters, digits, '-', '_'): NAME.dat, NAME.gp, NAME.png
  std::string title;
  std::string xlabel;  ///< quantity and unit, e.g. "matrix rows m"
  std::string ylabel;
  bool logx = false;
  bool logy = false;
  /// Lower end of a logarithmic y axis (values below are clipped at the border); 0: the data's.
  double ymin = 0.0;
  std::string key = "top right";  ///< gnuplot `set key` position, e.g. "below" for many curves
  /// Tick marks of a linear x axis at exactly these values (e.g. rank counts), the range padded by
  /// half a unit; empty: gnuplot's own.
  std::vector<double> xtics;
  /// Labels of the xtics (same length; empty: the values themselves), e.g. the names of bars.
  std::vector<std::string> xtic_labels;
  std::vector<Series> series;
  /// Image height relative to GnuplotOptions::height (room for a long legend below the plot).
  double height_scale = 1.0;
};

enum class ImageFormat { png, svg };

struct GnuplotOptions {
  std::string executable = "gnuplot";  ///< a name looked up on PATH, or a path
  /// "auto" (PNG through pngcairo when gnuplot has it, else the libgd png terminal, else SVG),
  /// "png" or "svg".
  std::string format = "auto";
  int width = 900;  ///< pixels
  int height = 600;
};

/// Output of a finished child process.
struct ProcessResult {
  int exit_code = 0;   ///< exit status, or 128 + signal number
  std::string output;  ///< stdout and stderr together
};

/// Runs argv[0] (looked up on PATH) with `argv` in folder `cwd`, stdin from /dev/null, and waits.
/// Throws idprune::Error when the program cannot be started (e.g. not installed).
ProcessResult run_process(const std::vector<std::string>& argv, const std::filesystem::path& cwd);

/// The gnuplot script drawing `plot` from NAME.dat into NAME.png / NAME.svg (paths relative to the
/// folder the script lies in). `terminal` is "pngcairo", "png" or "svg".
std::string gnuplot_script(const Plot& plot, const std::string& terminal, int width, int height);
/// The data file for `plot`: one block per series (separated by two blank lines, gnuplot `index`).
std::string gnuplot_data(const Plot& plot);

/// A gnuplot executable and the image terminal it will use.
class Gnuplot {
 public:
  /// Finds gnuplot and picks the terminal (runs `gnuplot -e "print GPVAL_TERMINALS"` once).
  /// Throws idprune::Error, saying how to install it, when gnuplot cannot be run, or when the
  /// requested format has no terminal.
  explicit Gnuplot(GnuplotOptions options = {});

  [[nodiscard]] ImageFormat format() const { return format_; }
  [[nodiscard]] const std::string& terminal() const { return terminal_; }
  [[nodiscard]] std::string extension() const { return format_ == ImageFormat::png ? "png" : "svg"; }

  /// Writes NAME.dat and NAME.gp into `dir`, runs gnuplot there and returns the image's file name
  /// (NAME.png or NAME.svg). Throws idprune::Error with gnuplot's messages when it fails or draws
  /// nothing.
  std::string render(const Plot& plot, const std::filesystem::path& dir) const;
  /// render() for several plots with one gnuplot process (`gnuplot A.gp B.gp ...`; each script
  /// starts with `reset`, so none depends on another). Returns the image file names in order.
  std::vector<std::string> render_all(const std::vector<Plot>& plots, const std::filesystem::path& dir) const;

 private:
  GnuplotOptions options_;
  std::string terminal_;
  ImageFormat format_ = ImageFormat::png;
};

}  // namespace idprune::report
