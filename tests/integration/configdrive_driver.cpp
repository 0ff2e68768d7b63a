// SPDX-License-Identifier: GPL-2.0-or-later
// Test driver: builds a config drive from network facts given on the command line, the way the supervisor does.
//
// configdrive_driver --runtime-dir DIR [--password-file F] [--uuid U] [--name N] [--admin-user A]
//                    --uplink IF --mac MAC [--mtu N] [--dhcp]
//                    [--address ADDR/PREFIX]... [--route DEST,GATEWAY]... [--dns ADDR]...
// Prints the ISO path on stdout. Exit status 0 built, 2 bad usage, 3 refused (password file), 1 failed.
#include "rescuevm/host/admin_password.h"
#include "rescuevm/configdrive/config_drive_iso.h"
#include "rescuevm/sys/log.h"
#include "rescuevm/core/secret.h"

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

using namespace rescuevm;

namespace {

int usage(const std::string &why)
{
    std::fprintf(stderr, "configdrive_driver: %s\n", why.c_str());
    return 2;
}

} // namespace

int main(int argc, char **argv)
{
    log::setup({});
    std::string runtime_dir, password_file;
    ConfigDriveInput input;
    input.vm_name = "rescuevm";
    input.network.found = true;
    std::vector<std::string> args(argv + 1, argv + argc);
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string &opt = args[i];
        auto value = [&]() -> std::optional<std::string> {
            if (i + 1 >= args.size())
                return std::nullopt;
            return args[++i];
        };
        if (opt == "--dhcp") {
            input.network.dhcp = true;
            continue;
        }
        auto v = value();
        if (!v)
            return usage(opt + " needs a value");
        if (opt == "--runtime-dir")
            runtime_dir = *v;
        else if (opt == "--password-file")
            password_file = *v;
        else if (opt == "--uuid")
            input.instance_uuid = *v;
        else if (opt == "--name")
            input.vm_name = *v;
        else if (opt == "--admin-user")
            input.admin_user = *v;
        else if (opt == "--uplink")
            input.network.uplink = *v;
        else if (opt == "--mac")
            input.network.mac = *v;
        else if (opt == "--mtu")
            input.network.mtu = static_cast<unsigned>(std::stoul(*v));
        else if (opt == "--address") {
            auto slash = v->find('/');
            if (slash == std::string::npos)
                return usage("--address wants ADDR/PREFIX");
            std::string address = v->substr(0, slash);
            bool v6 = address.find(':') != std::string::npos;
            input.network.addresses.push_back(
                {v6 ? "ipv6" : "ipv4", address, static_cast<unsigned>(std::stoul(v->substr(slash + 1))), "global"});
        } else if (opt == "--route") {
            auto comma = v->find(',');
            if (comma == std::string::npos)
                return usage("--route wants DEST,GATEWAY (DEST may be \"default\")");
            std::string gateway = v->substr(comma + 1);
            bool v6 = gateway.find(':') != std::string::npos;
            input.network.routes.push_back({v6 ? "ipv6" : "ipv4", v->substr(0, comma), gateway, false});
            input.network.gateways.push_back(gateway);
        } else if (opt == "--dns")
            input.network.dns.push_back(*v);
        else
            return usage("unknown option " + opt);
    }
    if (runtime_dir.empty())
        return usage("--runtime-dir is required");

    std::optional<Secret> password;
    if (!password_file.empty()) {
        auto read = read_admin_password(password_file);
        if (!read) {
            std::fprintf(stderr, "configdrive_driver: %s\n", read.error().message.c_str());
            return 3;
        }
        password = std::move(*read);
    }
    log::get("guest")->info("admin password {}", describe(password));
    input.admin_password = password ? &*password : nullptr;

    if (input.instance_uuid.empty()) {
        auto uuid = fresh_instance_uuid();
        if (!uuid) {
            std::fprintf(stderr, "configdrive_driver: %s\n", uuid.error().message.c_str());
            return 1;
        }
        input.instance_uuid = *uuid;
    }

    auto iso = build_config_drive(input, runtime_dir);
    if (!iso) {
        std::fprintf(stderr, "configdrive_driver: %s\n", iso.error().message.c_str());
        return 1;
    }
    std::printf("%s\n", iso->c_str());
    return 0;
}
