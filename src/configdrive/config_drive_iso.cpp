// SPDX-License-Identifier: GPL-2.0-or-later
// Builds config-2.iso: private staging directory, 0600 files, xorriso as a child process, atomic move into runtime_dir.
#include "rescuevm/configdrive/config_drive_iso.h"

#include "rescuevm/sys/files.h"
#include "rescuevm/sys/log.h"
#include "rescuevm/sys/process.h"
#include "rescuevm/sys/unique_fd.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <vector>

namespace rescuevm {
namespace {

Result<void> write_all(int fd, std::string_view data, const std::string &path)
{
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail(fmt::format("config drive: cannot write {}: {}", path, errno_text(errno)));
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return {};
}

// Creates a new file, 0600 whatever the umask, never through a symlink.
Result<void> write_private_file(const std::string &path, std::string_view content)
{
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd)
        return fail(fmt::format("config drive: cannot create {}: {}", path, errno_text(errno)));
    if (::fchmod(fd.get(), 0600) < 0)
        return fail(fmt::format("config drive: cannot chmod {}: {}", path, errno_text(errno)));
    RESCUEVM_TRY(write_all(fd.get(), content, path));
    return {};
}

Result<void> make_private_dir(const std::string &path)
{
    if (::mkdir(path.c_str(), 0700) < 0)
        return fail(fmt::format("config drive: cannot create directory {}: {}", path, errno_text(errno)));
    return {};
}

// The staging directory lives only while the image is built. The file that
// held the password is overwritten with zeros before it is unlinked: on tmpfs
// that rewrites the very pages the password was in.
class StagingDir {
public:
    explicit StagingDir(std::string path) : path_(std::move(path)) {}
    StagingDir(const StagingDir &) = delete;
    StagingDir &operator=(const StagingDir &) = delete;
    ~StagingDir()
    {
        if (!secret_file_.empty())
            scrub(secret_file_);
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
        if (ec)
            log::get("guest")->warn("config drive: cannot remove staging directory {}: {}; remove it by hand",
                                       path_, ec.message());
    }
    const std::string &path() const { return path_; }
    void holds_secret(std::string file) { secret_file_ = std::move(file); }

private:
    static void scrub(const std::string &file)
    {
        UniqueFd fd(::open(file.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC));
        struct stat st {};
        if (!fd || ::fstat(fd.get(), &st) < 0 || !S_ISREG(st.st_mode))
            return;
        std::array<char, 4096> zeros{};
        for (off_t done = 0; done < st.st_size;) {
            std::size_t chunk = static_cast<std::size_t>(std::min<off_t>(st.st_size - done, zeros.size()));
            ssize_t n = ::pwrite(fd.get(), zeros.data(), chunk, done);
            if (n <= 0)
                break;
            done += n;
        }
        ::fdatasync(fd.get());
    }

    std::string path_;
    std::string secret_file_;
};

// The tool's last few non-empty lines, on one line, for an error message.
std::string last_lines(const std::string &text, std::size_t count)
{
    std::vector<std::string> lines;
    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t end = text.find('\n', start);
        if (end == std::string::npos)
            end = text.size();
        if (end > start)
            lines.push_back(text.substr(start, end - start));
        start = end + 1;
    }
    if (lines.empty())
        return "(no output)";
    std::string out;
    for (std::size_t i = lines.size() > count ? lines.size() - count : 0; i < lines.size(); ++i)
        out += (out.empty() ? "" : " | ") + lines[i];
    return out;
}


} // namespace

Result<std::string> fresh_instance_uuid(const std::string &source)
{
    UniqueFd fd(::open(source.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd)
        return fail(fmt::format("config drive: cannot open {}: {}", source, errno_text(errno)));
    std::array<char, 64> buffer{};
    ssize_t n;
    do
        n = ::read(fd.get(), buffer.data(), buffer.size() - 1);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return fail(fmt::format("config drive: cannot read {}: {}", source, errno_text(errno)));
    std::string uuid(buffer.data(), static_cast<std::size_t>(n));
    while (!uuid.empty() && (uuid.back() == '\n' || uuid.back() == ' '))
        uuid.pop_back();
    if (!is_uuid(uuid))
        return fail(fmt::format("config drive: {} gave \"{}\", which is not a UUID", source, uuid));
    return uuid;
}

Result<std::string> build_config_drive(const ConfigDriveInput &input, const std::string &runtime_dir,
                                       const ConfigDriveOptions &options)
{
    if (!is_uuid(input.instance_uuid))
        return fail(fmt::format("config drive: instance uuid \"{}\" is not a UUID: take a fresh one from "
                                "/proc/sys/kernel/random/uuid",
                                input.instance_uuid));
    struct stat st {};
    if (::stat(runtime_dir.c_str(), &st) < 0 || !S_ISDIR(st.st_mode))
        return fail(fmt::format("config drive: runtime directory {} does not exist (paths.runtime_dir): create it "
                                "first (mkdir -m 0700 {})",
                                runtime_dir, runtime_dir));

    std::string pattern = runtime_dir + "/config-drive.XXXXXX";
    std::vector<char> templ(pattern.begin(), pattern.end());
    templ.push_back('\0');
    if (::mkdtemp(templ.data()) == nullptr) // mode 0700
        return fail(fmt::format("config drive: cannot create a staging directory in {}: {}", runtime_dir,
                                errno_text(errno)));
    StagingDir staging(templ.data());

    const std::string tree = staging.path() + "/tree";
    const std::string latest = tree + "/openstack/latest";
    RESCUEVM_TRY(make_private_dir(tree));
    RESCUEVM_TRY(make_private_dir(tree + "/openstack"));
    RESCUEVM_TRY(make_private_dir(latest));

    {
        Secret meta = meta_data_text(input);
        staging.holds_secret(latest + "/meta_data.json");
        RESCUEVM_TRY(write_private_file(latest + "/meta_data.json", meta.reveal()));
    } // the text with the password is wiped here
    RESCUEVM_TRY(write_private_file(latest + "/network_data.json", network_data_json(input.network).dump(2) + "\n"));
    RESCUEVM_TRY(write_private_file(latest + "/user_data", user_data_ps1(input.network)));

    // The image is written inside the 0700 staging directory, so no one else can
    // open it whatever mode xorriso gives it, then moved into place atomically.
    const std::string staged_iso = staging.path() + "/" + kConfigDriveFileName;
    // -J -R: Joliet for Windows, Rock Ridge for Linux guests (it keeps the 0600
    // modes, so inside a Linux guest only root reads the password); -l and the
    // -allow-* options keep "meta_data.json" intact in plain ISO 9660 too, as Nova does.
    std::vector<std::string> argv = {options.xorriso, "-as", "mkisofs", "-V", kConfigDriveLabel,
                                     "-J", "-R", "-l", "-allow-lowercase", "-allow-multidot",
                                     "-o", staged_iso, tree};
    SpawnOptions spawn;
    spawn.argv = argv;
    // A fixed environment: the same messages in every locale, no surprises from ours.
    spawn.clear_environment = true;
    spawn.env_set = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"};
    spawn.umask = 077; // whatever xorriso creates is private
    auto run = run_to_completion(spawn, std::chrono::seconds(60));
    if (!run)
        return fail("config drive: " + run.error().message +
                    (run.error().message.find("not found") != std::string::npos
                         ? ": install the Debian package xorriso"
                         : ""));
    if (!run->ok())
        return fail(fmt::format("config drive: xorriso {} building {}: {}", run->status.describe(), staged_iso,
                                last_lines(run->output, 3)));

    UniqueFd iso(::open(staged_iso.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!iso || ::fstat(iso.get(), &st) < 0 || !S_ISREG(st.st_mode))
        return fail(fmt::format("config drive: xorriso reported success but {} is not a regular file", staged_iso));
    if (::fchmod(iso.get(), 0600) < 0)
        return fail(fmt::format("config drive: cannot chmod {}: {}", staged_iso, errno_text(errno)));

    const std::string final_path = runtime_dir + "/" + kConfigDriveFileName;
    if (::rename(staged_iso.c_str(), final_path.c_str()) < 0)
        return fail(fmt::format("config drive: cannot move the image to {}: {}", final_path, errno_text(errno)));

    const char *password = input.admin_password && !input.admin_password->empty() ? "set" : "not set";
    log::get("guest")->info("config drive {} built: instance {}, admin user {}, admin password {}, {} bytes",
                            final_path, input.instance_uuid, input.admin_user, password,
                            static_cast<long long>(st.st_size));
    return final_path;
}

} // namespace rescuevm
