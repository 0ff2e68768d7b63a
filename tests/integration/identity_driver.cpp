// SPDX-License-Identifier: GPL-2.0-or-later
// Test driver for the disk identity guard: record, check, restore and show, without the agent.
#include "rescuevm/signatures/disk_signatures.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

using namespace rescuevm;

namespace {

int usage()
{
    std::cerr << "usage: identity_driver record FILE DEVICE...   record identities into FILE\n"
                 "       identity_driver check FILE              one warning line per change; exit 10 if any\n"
                 "       identity_driver restore FILE [NAME...]  write recorded identities back\n"
                 "       identity_driver show DEVICE             print the current identity as JSON\n";
    return 2;
}

int record(const std::string &file, const std::vector<std::string> &devices)
{
    std::vector<DiskSignature> disks;
    for (const auto &dev : devices) {
        auto id = read_disk_signature(dev);
        if (!id) {
            std::cerr << id.error().message << "\n";
            return 1;
        }
        disks.push_back(std::move(*id));
    }
    if (auto r = save_signatures(file, disks); !r) {
        std::cerr << r.error().message << "\n";
        return 1;
    }
    return 0;
}

int check(const std::string &file)
{
    auto recorded = load_signatures(file);
    if (!recorded) {
        std::cerr << recorded.error().message << "\n";
        return 1;
    }
    auto changes = check_signatures(*recorded);
    for (const auto &c : changes)
        std::cout << describe_change(c) << "\n";
    return changes.empty() ? 0 : 10;
}

int restore(const std::string &file, const std::vector<std::string> &names)
{
    auto recorded = load_signatures(file);
    if (!recorded) {
        std::cerr << recorded.error().message << "\n";
        return 1;
    }
    int status = 0;
    for (const auto &d : *recorded) {
        if (!names.empty() && std::find(names.begin(), names.end(), d.name) == names.end())
            continue;
        auto r = restore_signature(d);
        if (!r) {
            std::cerr << r.error().message << "\n";
            status = 1;
            continue;
        }
        for (const auto &a : r->actions)
            std::cout << d.name << ": " << a << "\n";
        std::cout << d.name << ": " << (r->written ? "written" : "nothing written") << "\n";
    }
    return status;
}

} // namespace

int main(int argc, char **argv)
{
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.size() >= 3 && args[0] == "record")
        return record(args[1], {args.begin() + 2, args.end()});
    if (args.size() == 2 && args[0] == "check")
        return check(args[1]);
    if (args.size() >= 2 && args[0] == "restore")
        return restore(args[1], {args.begin() + 2, args.end()});
    if (args.size() == 2 && args[0] == "show") {
        auto id = read_disk_signature(args[1]);
        if (!id) {
            std::cerr << id.error().message << "\n";
            return 1;
        }
        std::cout << nlohmann::json(*id).dump(2) << "\n";
        return 0;
    }
    return usage();
}
