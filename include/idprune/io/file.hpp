#pragma once
// Durable file output shared by every writer of idprune (results, models, configs, data files).
//
// Files idprune creates get the permissions any new file of the process gets, 0666 minus the
// umask, whether written whole or appended to, so a result folder never mixes 0600 and 0644 files.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace idprune::io {

/// Replaces `path` with `bytes` atomically and durably: a uniquely named temporary file in the same
/// folder (so the rename cannot cross file systems), every byte written, fsync of the file, rename
/// over `path`, fsync of the folder. A reader sees the old or the new content, never a mixture, and
/// after a crash the new content survives once this returns. On any failure (a full disk, a folder
/// that cannot be written) the temporary file is removed, `path` is left as it was, and
/// idprune::Error names `path` and the system's reason.
void write_file_atomically(const std::string& path, std::string_view bytes);
void write_file_atomically(const std::string& path, std::span<const std::uint8_t> bytes);

/// Appends `bytes` to `path` (created if missing, then the folder is fsync'd too) and fsyncs it.
/// A failure part-way leaves at most one incomplete last record, which readers must tolerate.
void append_durably(const std::string& path, std::string_view bytes);

/// The whole content of `path`; idprune::Error naming it when it cannot be opened or read.
[[nodiscard]] std::string read_file(const std::string& path);

/// fsync of a folder, so that entries created or renamed in it survive a crash.
void sync_folder(const std::string& dir);

/// Creates `dir` and its parents when missing and checks that a file can be created in it (with a
/// probe file, removed again), so a run can refuse an unusable output folder before its work
/// starts. idprune::Error names `dir` and the reason.
void prepare_output_folder(const std::string& dir);

/// Why writing into `dir` may fail, for an error message: "the file system holding 'DIR' is full
/// (N bytes free)", "'DIR' is not writable", "files are limited to N bytes (ulimit -f)", or "".
[[nodiscard]] std::string write_failure_cause(const std::string& dir);

}  // namespace idprune::io
