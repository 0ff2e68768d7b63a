// SPDX-License-Identifier: GPL-2.0-or-later
// Unit tests of the disk identity guard: sector parsing, comparison, warnings, record, restore on images.
#include "rescuevm/core/runtime_paths.h"
#include "rescuevm/signatures/disk_signatures.h"
#include "rescuevm/host/probes.h"

#include <doctest/doctest.h>

#include <sys/stat.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

using namespace rescuevm;

namespace {

using Bytes = std::vector<std::uint8_t>;

void put32(Bytes &b, std::size_t at, std::uint32_t v)
{
    for (int i = 0; i < 4; ++i)
        b[at + i] = static_cast<std::uint8_t>(v >> (8 * i));
}

void put64(Bytes &b, std::size_t at, std::uint64_t v)
{
    put32(b, at, static_cast<std::uint32_t>(v));
    put32(b, at + 4, static_cast<std::uint32_t>(v >> 32));
}

Bytes hex(const char *text)
{
    Bytes out;
    std::string digits;
    for (const char *p = text; *p; ++p)
        if (std::isxdigit(static_cast<unsigned char>(*p)))
            digits += *p;
    for (std::size_t i = 0; i + 1 < digits.size(); i += 2)
        out.push_back(static_cast<std::uint8_t>(std::stoul(digits.substr(i, 2), nullptr, 16)));
    return out;
}

// A primary GPT header written by sgdisk 1.0.9 on a 16 MiB image (xxd -s 512 -l 92);
// blkid -p -o value -s PTUUID printed f4d0c979-f72a-4dda-92c2-7a811e2a6b31 for it.
const char *sgdisk_header = "4546 4920 5041 5254 0000 0100 5c00 0000 4a6a 3bb2 0000 0000 0100 0000 0000 0000"
                            "ff7f 0000 0000 0000 2200 0000 0000 0000 de7f 0000 0000 0000 79c9 d0f4 2af7 da4d"
                            "92c2 7a81 1e2a 6b31 0200 0000 0000 0000 8000 0000 8000 0000 5b36 d532";

const Bytes linux_fs_type = hex("af3dc60f 8384 7247 8e79 3d69d8477de4");     // 0FC63DAF-8483-4772-8E79-3D69D8477DE4
const Bytes part_guid_bytes = hex("223c33e6 b9b0 694c 949b c6b49f9e4c1c");   // E6333C22-B0B9-4C69-949B-C6B49F9E4C1C

Bytes mbr_sector(std::uint32_t signature, std::uint8_t type)
{
    Bytes s(512, 0);
    put32(s, 0x1B8, signature);
    s[0x1BE] = 0x80;
    s[0x1BE + 4] = type;
    put32(s, 0x1BE + 8, 2048);
    put32(s, 0x1BE + 12, 8192);
    s[510] = 0x55;
    s[511] = 0xAA;
    return s;
}

// A small GPT disk image, built byte by byte: pMBR, both headers, both entry arrays.
struct GptImage {
    unsigned block = 512;
    std::uint64_t blocks = 2048;
    Bytes disk_guid = hex("79c9d0f4 2af7 da4d 92c2 7a811e2a6b31");
    std::vector<Bytes> part_guids = {part_guid_bytes};
    std::uint64_t last_partition_extra = 0; // grows the last partition: "the customer resized it"

    Bytes entries() const
    {
        Bytes e(128 * 128, 0);
        for (std::size_t i = 0; i < part_guids.size(); ++i) {
            std::memcpy(&e[i * 128], linux_fs_type.data(), 16);
            std::memcpy(&e[i * 128 + 16], part_guids[i].data(), 16);
            put64(e, i * 128 + 32, 40 + 100 * i);
            put64(e, i * 128 + 40, 40 + 100 * i + 99 +
                                       (i + 1 == part_guids.size() ? last_partition_extra : 0));
        }
        return e;
    }

    Bytes header(std::uint64_t my, std::uint64_t alt, std::uint64_t entries_lba, const Bytes &ents) const
    {
        Bytes h(block, 0);
        std::memcpy(h.data(), "EFI PART", 8);
        put32(h, 8, 0x00010000);
        put32(h, 12, 92);
        put64(h, 24, my);
        put64(h, 32, alt);
        put64(h, 40, 34);
        put64(h, 48, blocks - 34);
        std::memcpy(&h[56], disk_guid.data(), 16);
        put64(h, 72, entries_lba);
        put32(h, 80, 128);
        put32(h, 84, 128);
        put32(h, 88, crc32(ents));
        put32(h, 16, crc32(std::span<const std::uint8_t>(h).first(92)));
        return h;
    }

    Bytes build() const
    {
        Bytes img(block * blocks, 0);
        Bytes pmbr(512, 0);
        pmbr[0x1BE + 2] = 2;
        pmbr[0x1BE + 4] = 0xEE;
        put32(pmbr, 0x1BE + 8, 1);
        put32(pmbr, 0x1BE + 12, static_cast<std::uint32_t>(blocks - 1));
        pmbr[510] = 0x55;
        pmbr[511] = 0xAA;
        std::copy(pmbr.begin(), pmbr.end(), img.begin());
        Bytes ents = entries();
        std::uint64_t last = blocks - 1, backup_entries = last - 32;
        auto place = [&](std::uint64_t lba, const Bytes &b) {
            std::copy(b.begin(), b.end(), img.begin() + static_cast<std::ptrdiff_t>(lba * block));
        };
        place(1, header(1, last, 2, ents));
        place(2, ents);
        place(backup_entries, ents);
        place(last, header(last, 1, backup_entries, ents));
        return img;
    }
};

struct TempDir {
    std::filesystem::path path;
    TempDir()
    {
        char tmpl[] = "/tmp/rescuevm-identity-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~TempDir() { std::filesystem::remove_all(path); }
};

void write_file(const std::filesystem::path &p, const Bytes &b)
{
    std::ofstream out(p, std::ios::binary);
    out.write(reinterpret_cast<const char *>(b.data()), static_cast<std::streamsize>(b.size()));
}

Bytes read_file(const std::filesystem::path &p)
{
    std::ifstream in(p, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(in), {});
}

DiskSignature mbr_identity(const std::string &name, const std::string &id)
{
    DiskSignature d;
    d.name = name;
    d.path = "/dev/" + name;
    d.table = "dos";
    d.disk_id = id;
    return d;
}

DiskInfo disk(const std::string &name, const std::string &id)
{
    DiskInfo d;
    d.name = name;
    d.path = "/dev/" + name;
    d.disk_id = id;
    return d;
}

} // namespace

TEST_CASE("crc32 matches the standard check value")
{
    const char *check = "123456789";
    CHECK(crc32(std::span(reinterpret_cast<const std::uint8_t *>(check), 9)) == 0xCBF43926u);
}

TEST_CASE("EFI GUIDs print like blkid: mixed-endian, lowercase")
{
    Bytes g = hex("79c9d0f4 2af7 da4d 92c2 7a811e2a6b31");
    CHECK(format_efi_guid(std::span<const std::uint8_t, 16>(g.data(), 16)) ==
          "f4d0c979-f72a-4dda-92c2-7a811e2a6b31");
}

TEST_CASE("MBR signature is read little-endian at 0x1B8, printed as blkid's PTUUID")
{
    auto m = parse_mbr(mbr_sector(0x1234abcd, 0x07));
    CHECK(m.boot_signature);
    CHECK(m.valid_records);
    CHECK_FALSE(m.protective);
    CHECK_FALSE(m.volume_boot_record);
    CHECK(m.disk_id == "1234abcd");
}

TEST_CASE("an 0xEE record marks a protective MBR")
{
    CHECK(parse_mbr(mbr_sector(0, 0xEE)).protective);
}

TEST_CASE("an NTFS boot sector over the whole disk is not a partition table")
{
    Bytes s = mbr_sector(0x11223344, 0x07);
    std::memcpy(&s[3], "NTFS    ", 8);
    CHECK(parse_mbr(s).volume_boot_record);
}

TEST_CASE("a sector without 0x55AA has no boot signature")
{
    Bytes s(512, 0);
    CHECK_FALSE(parse_mbr(s).boot_signature);
}

TEST_CASE("GPT header written by sgdisk parses to blkid's PTUUID")
{
    Bytes block = hex(sgdisk_header);
    block.resize(512, 0);
    auto h = parse_gpt_header(block, 1);
    REQUIRE(h);
    CHECK(h->disk_guid == "f4d0c979-f72a-4dda-92c2-7a811e2a6b31");
    CHECK(h->alternate_lba == 0x7fff);
    CHECK(h->entries_lba == 2);
    CHECK(h->entry_count == 128);
    CHECK(h->entry_size == 128);
    CHECK(h->entries_crc == 0x32d5365bu);
}

TEST_CASE("GPT header with a flipped byte fails its CRC")
{
    Bytes block = hex(sgdisk_header);
    block.resize(512, 0);
    block[60] ^= 1;
    auto h = parse_gpt_header(block, 1);
    REQUIRE_FALSE(h);
    CHECK(h.error().message.find("CRC") != std::string::npos);
}

TEST_CASE("GPT header that is not where it says it is is refused")
{
    Bytes block = hex(sgdisk_header);
    block.resize(512, 0);
    CHECK_FALSE(parse_gpt_header(block, 5));
}

TEST_CASE("GPT entries give the used partitions with their GUIDs and sectors")
{
    GptImage img;
    img.part_guids.push_back(hex("00112233 4455 6677 8899 aabbccddeeff"));
    Bytes ents = img.entries();
    auto h = parse_gpt_header(img.header(1, 2047, 2, ents), 1);
    REQUIRE(h);
    auto parts = parse_gpt_entries(ents, *h);
    REQUIRE(parts);
    REQUIRE(parts->size() == 2);
    CHECK((*parts)[0].number == 1);
    CHECK((*parts)[0].guid == "e6333c22-b0b9-4c69-949b-c6b49f9e4c1c");
    CHECK((*parts)[0].type_guid == "0fc63daf-8483-4772-8e79-3d69d8477de4");
    CHECK((*parts)[0].first_lba == 40);
    CHECK((*parts)[0].last_lba == 139);
    CHECK((*parts)[1].number == 2);
    CHECK((*parts)[1].guid == "33221100-5544-7766-8899-aabbccddeeff");

    ents[16] ^= 0xFF;
    CHECK_FALSE(parse_gpt_entries(ents, *h));
}

TEST_CASE("compare finds a changed MBR signature, restorable")
{
    auto changes = compare(mbr_identity("sdb", "1234abcd"), mbr_identity("sdb", "9f8e7d6c"));
    REQUIRE(changes.size() == 1);
    CHECK(changes[0].kind == SignatureChange::Kind::disk_id);
    CHECK(changes[0].old_value == "1234abcd");
    CHECK(changes[0].new_value == "9f8e7d6c");
    CHECK(changes[0].restorable);
    CHECK(compare(mbr_identity("sdb", "1234abcd"), mbr_identity("sdb", "1234ABCD")).empty());
}

TEST_CASE("compare finds GPT partition GUID changes and moved partitions")
{
    DiskSignature before;
    before.name = "sdc";
    before.path = "/dev/sdc";
    before.table = "gpt";
    before.disk_id = "f4d0c979-f72a-4dda-92c2-7a811e2a6b31";
    before.partitions = {{1, "aaaaaaaa-0000-0000-0000-000000000001", "", 2048, 4095},
                         {2, "aaaaaaaa-0000-0000-0000-000000000002", "", 4096, 8191},
                         {3, "aaaaaaaa-0000-0000-0000-000000000003", "", 8192, 9999}};
    DiskSignature now = before;
    now.partitions[0].guid = "bbbbbbbb-0000-0000-0000-000000000001";
    now.partitions[1].last_lba = 9000;
    now.partitions.pop_back();

    auto changes = compare(before, now);
    REQUIRE(changes.size() == 3);
    CHECK(changes[0].kind == SignatureChange::Kind::partition_guid);
    CHECK(changes[0].partition == 1);
    CHECK(changes[0].restorable);
    CHECK(changes[1].kind == SignatureChange::Kind::partition_moved);
    CHECK(changes[1].new_value == "sectors 4096-9000");
    CHECK_FALSE(changes[1].restorable);
    CHECK(changes[2].kind == SignatureChange::Kind::partition_moved);
    CHECK(changes[2].new_value == "gone");
}

TEST_CASE("compare reports a changed table type alone, not restorable")
{
    auto now = mbr_identity("sdb", "");
    now.table = "none";
    auto changes = compare(mbr_identity("sdb", "1234abcd"), now);
    REQUIRE(changes.size() == 1);
    CHECK(changes[0].kind == SignatureChange::Kind::table);
    CHECK_FALSE(changes[0].restorable);
}

TEST_CASE("compare of lists reports a recorded disk that disappeared")
{
    auto changes = compare(std::vector{mbr_identity("sdb", "1234abcd"), mbr_identity("sdc", "0badf00d")},
                           std::vector{mbr_identity("sdb", "1234abcd")});
    REQUIRE(changes.size() == 1);
    CHECK(changes[0].name == "sdc");
    CHECK(changes[0].kind == SignatureChange::Kind::unreadable);
}

TEST_CASE("describe_change: one line naming disk, values, boot consequence and the fix")
{
    auto c = compare(mbr_identity("sdb", "1234abcd"), mbr_identity("sdb", "9f8e7d6c")).at(0);
    std::string line = describe_change(c);
    CHECK(line.find('\n') == std::string::npos);
    CHECK(line.find("sdb") != std::string::npos);
    CHECK(line.find("MBR disk signature") != std::string::npos);
    CHECK(line.find("1234abcd") != std::string::npos);
    CHECK(line.find("9f8e7d6c") != std::string::npos);
    CHECK(line.find("0xc000000e") != std::string::npos);
    CHECK(line.find("rescuevm signatures restore sdb") != std::string::npos);

    SignatureChange g;
    g.kind = SignatureChange::Kind::disk_id;
    g.name = "nvme0n1";
    g.path = "/dev/nvme0n1";
    g.table = "gpt";
    g.old_value = "f4d0c979-f72a-4dda-92c2-7a811e2a6b31";
    g.new_value = "11111111-2222-3333-4444-555555555555";
    line = describe_change(g);
    CHECK(line.find("GPT disk GUID") != std::string::npos);
    CHECK(line.find("winload.exe") != std::string::npos);
    CHECK(line.find("rescuevm signatures restore nvme0n1") != std::string::npos);

    g.kind = SignatureChange::Kind::table;
    g.old_value = "gpt";
    g.new_value = "none";
    line = describe_change(g);
    CHECK(line.find("rescuevm signatures restore") == std::string::npos);
    CHECK(line.find("does not rewrite partition tables") != std::string::npos);
}

TEST_CASE("signature_collisions: two selected disks with one signature")
{
    auto w = signature_collisions({disk("sdb", "1234abcd"), disk("sdc", "1234ABCD"), disk("sdd", "55667788")}, "");
    REQUIRE(w.size() == 1);
    CHECK(w[0].find("sdb, sdc") != std::string::npos);
    CHECK(w[0].find("1234abcd") != std::string::npos);
    CHECK(w[0].find("Windows") != std::string::npos);
}

TEST_CASE("signature_collisions: a disk sharing the rescue image's identity")
{
    auto w = signature_collisions({disk("sdb", "1234abcd"), disk("sdc", "55667788")}, "55667788");
    REQUIRE(w.size() == 1);
    CHECK(w[0].find("disk sdc") != std::string::npos);
    CHECK(w[0].find("rescue image") != std::string::npos);
}

TEST_CASE("signature_collisions: empty and all-zero identities never collide")
{
    CHECK(signature_collisions({disk("sdb", ""), disk("sdc", ""), disk("sdd", "00000000"),
                               disk("sde", "00000000")}, "").empty());
    CHECK(signature_collisions({disk("sdb", "")}, "").empty());
}

TEST_CASE("bitlocker_notices: one line per disk holding BitLocker partitions")
{
    DiskInfo a = disk("sdb", "1234abcd");
    PartitionInfo p1;
    p1.name = "sdb1";
    p1.fs_type = "ntfs";
    PartitionInfo p2;
    p2.name = "sdb2";
    p2.fs_type = "BitLocker";
    a.partitions = {p1, p2};
    DiskInfo b = disk("sdc", "");
    PartitionInfo p3;
    p3.name = "sdc1";
    p3.windows_role = "bitlocker";
    PartitionInfo p4 = p3;
    p4.name = "sdc2";
    b.partitions = {p3, p4};
    DiskInfo c = disk("sdd", "");
    c.partitions = {p1};

    auto n = bitlocker_notices({a, b, c});
    REQUIRE(n.size() == 2);
    CHECK(n[0].find("partition sdb2 is") != std::string::npos);
    CHECK(n[0].find("sdb1") == std::string::npos);
    CHECK(n[0].find("recovery key") != std::string::npos);
    CHECK(n[0].find("TPM") != std::string::npos);
    CHECK(n[1].find("partitions sdc1, sdc2 are") != std::string::npos);
}

TEST_CASE("save_signatures writes a private file that load_signatures reads back")
{
    TempDir dir;
    DiskSignature g;
    g.name = "sdc";
    g.path = "/dev/sdc";
    g.table = "gpt";
    g.disk_id = "f4d0c979-f72a-4dda-92c2-7a811e2a6b31";
    g.partitions = {{1, "e6333c22-b0b9-4c69-949b-c6b49f9e4c1c", "0fc63daf-8483-4772-8e79-3d69d8477de4", 2048, 10239}};
    g.logical_block_size = 4096;
    g.backup_header_lba = 4095;
    std::vector<DiskSignature> disks = {mbr_identity("sdb", "1234abcd"), g};
    std::string path = RuntimePaths{dir.path.string()}.signatures();
    REQUIRE(save_signatures(path, disks));
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);

    auto back = load_signatures(path);
    REQUIRE(back);
    REQUIRE(back->size() == 2);
    CHECK(compare(disks, *back).empty());
    CHECK((*back)[1].partitions.at(0).last_lba == 10239);
    CHECK((*back)[1].logical_block_size == 4096);
    CHECK((*back)[1].backup_header_lba == 4095);
}

TEST_CASE("load_signatures names the file when it is missing or broken")
{
    TempDir dir;
    auto missing = load_signatures((dir.path / "nope.json").string());
    REQUIRE_FALSE(missing);
    CHECK(missing.error().message.find("nope.json") != std::string::npos);
    write_file(dir.path / "bad.json", {'{', 'x'});
    auto bad = load_signatures((dir.path / "bad.json").string());
    REQUIRE_FALSE(bad);
    CHECK(bad.error().message.find("bad.json") != std::string::npos);
}

TEST_CASE("read_disk_signature on image files: MBR, GPT, no table")
{
    TempDir dir;
    Bytes mbr = mbr_sector(0xdeadbeef, 0x07);
    mbr.resize(1024 * 1024, 0);
    write_file(dir.path / "mbr.img", mbr);
    auto m = read_disk_signature((dir.path / "mbr.img").string());
    REQUIRE(m);
    CHECK(m->table == "dos");
    CHECK(m->disk_id == "deadbeef");
    CHECK(m->name == "mbr.img");

    write_file(dir.path / "gpt.img", GptImage{}.build());
    auto g = read_disk_signature((dir.path / "gpt.img").string());
    REQUIRE(g);
    CHECK(g->table == "gpt");
    CHECK(g->disk_id == "f4d0c979-f72a-4dda-92c2-7a811e2a6b31");
    CHECK(g->backup_header_lba == 2047);
    CHECK(g->last_lba == 2047);
    REQUIRE(g->partitions.size() == 1);
    CHECK(g->partitions[0].guid == "e6333c22-b0b9-4c69-949b-c6b49f9e4c1c");

    write_file(dir.path / "blank.img", Bytes(1024 * 1024, 0));
    auto n = read_disk_signature((dir.path / "blank.img").string());
    REQUIRE(n);
    CHECK(n->table == "none");
    CHECK(n->disk_id.empty());

    CHECK_FALSE(read_disk_signature((dir.path / "absent.img").string()));
}

TEST_CASE("restore_signature puts an MBR signature back and changes nothing else")
{
    TempDir dir;
    auto path = dir.path / "mbr.img";
    Bytes original = mbr_sector(0x1234abcd, 0x07);
    original.resize(1024 * 1024, 0);
    original[100] = 0x42; // boot code the restore must not touch
    write_file(path, original);
    auto recorded = read_disk_signature(path.string());
    REQUIRE(recorded);

    Bytes changed = original;
    put32(changed, 0x1B8, 0x9f8e7d6c);
    write_file(path, changed);
    auto found = check_signatures({*recorded});
    REQUIRE(found.size() == 1);
    CHECK(found[0].new_value == "9f8e7d6c");

    auto report = restore_signature(*recorded);
    REQUIRE_MESSAGE(report, (report ? "" : report.error().message));
    CHECK(report->written);
    CHECK(read_file(path) == original);
    CHECK(check_signatures({*recorded}).empty());

    auto again = restore_signature(*recorded);
    REQUIRE(again);
    CHECK_FALSE(again->written);
}

TEST_CASE("restore_signature puts GPT disk and partition GUIDs back, sector 0 untouched")
{
    TempDir dir;
    auto path = dir.path / "gpt.img";
    GptImage img;
    Bytes original = img.build();
    write_file(path, original);
    auto recorded = read_disk_signature(path.string());
    REQUIRE(recorded);

    GptImage windows = img;
    windows.disk_guid = hex("01020304 0506 0708 090a 0b0c0d0e0f10");
    windows.part_guids[0] = hex("11111111 2222 3333 4444 555555555555");
    write_file(path, windows.build());
    CHECK(check_signatures({*recorded}).size() == 2);

    auto report = restore_signature(*recorded);
    REQUIRE_MESSAGE(report, (report ? "" : report.error().message));
    CHECK(report->written);
    CHECK(report->actions.size() == 2);
    CHECK(check_signatures({*recorded}).empty());
    Bytes after = read_file(path);
    CHECK(std::equal(after.begin(), after.begin() + 512, original.begin()));
    CHECK(after == original);
}

TEST_CASE("restore_signature refuses a disk whose table type changed, and writes nothing")
{
    TempDir dir;
    auto path = dir.path / "disk.img";
    Bytes mbr = mbr_sector(0x1234abcd, 0x07);
    mbr.resize(1024 * 1024, 0);
    write_file(path, mbr);
    auto recorded = read_disk_signature(path.string());
    REQUIRE(recorded);

    Bytes gpt = GptImage{}.build();
    write_file(path, gpt);
    auto r = restore_signature(*recorded);
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("dos") != std::string::npos);
    CHECK(r.error().message.find("gpt") != std::string::npos);
    CHECK(r.error().message.find("never creates or converts") != std::string::npos);
    CHECK(read_file(path) == gpt);

    Bytes blank(1024 * 1024, 0);
    write_file(path, blank);
    CHECK_FALSE(restore_signature(*recorded));
    CHECK(read_file(path) == blank);
}

TEST_CASE("restore_signature leaves a moved partition alone and restores the rest")
{
    TempDir dir;
    auto path = dir.path / "gpt.img";
    GptImage img;
    img.part_guids.push_back(hex("00112233 4455 6677 8899 aabbccddeeff"));
    write_file(path, img.build());
    auto recorded = read_disk_signature(path.string());
    REQUIRE(recorded);

    GptImage windows = img;
    windows.disk_guid = hex("01020304 0506 0708 090a 0b0c0d0e0f10");
    windows.part_guids[1] = hex("11111111 2222 3333 4444 555555555555");
    windows.last_partition_extra = 50;
    write_file(path, windows.build());

    auto report = restore_signature(*recorded);
    REQUIRE_MESSAGE(report, (report ? "" : report.error().message));
    CHECK(report->written);
    auto now = read_disk_signature(path.string());
    REQUIRE(now);
    CHECK(now->disk_id == recorded->disk_id);
    REQUIRE(now->partitions.size() == 2);
    CHECK(now->partitions[1].guid == "11111111-2222-3333-4444-555555555555");
    CHECK(now->partitions[1].last_lba == recorded->partitions[1].last_lba + 50);
    bool mentioned = false;
    for (const auto &a : report->actions)
        mentioned = mentioned || a.find("partition 2 left alone") != std::string::npos;
    CHECK(mentioned);
}

TEST_CASE("restore_signature refuses a GPT whose backup header is not at the end")
{
    TempDir dir;
    auto path = dir.path / "gpt.img";
    GptImage img;
    write_file(path, img.build());
    auto recorded = read_disk_signature(path.string());
    REQUIRE(recorded);

    GptImage windows = img;
    windows.disk_guid = hex("01020304 0506 0708 090a 0b0c0d0e0f10");
    Bytes grown = windows.build();
    grown.resize(grown.size() + 1024 * 1024, 0); // the disk grew: backup header now mid-disk
    write_file(path, grown);
    auto r = restore_signature(*recorded);
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("backup GPT header") != std::string::npos);
    CHECK(read_file(path) == grown);
}

TEST_CASE("restore_signature refuses a damaged record before touching the disk")
{
    TempDir dir;
    auto path = dir.path / "mbr.img";
    Bytes mbr = mbr_sector(0x1234abcd, 0x07);
    mbr.resize(1024 * 1024, 0);
    write_file(path, mbr);
    auto recorded = read_disk_signature(path.string());
    REQUIRE(recorded);
    recorded->disk_id = "12zz";
    auto r = restore_signature(*recorded);
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("damaged") != std::string::npos);
    CHECK(read_file(path) == mbr);
}

TEST_CASE("disk_id_of_head: the GPT disk GUID at 512 or 4096, the MBR signature, or nothing")
{
    std::vector<std::uint8_t> head(8192, 0);
    CHECK(rescuevm::disk_id_of_head(head) == "");
    // An MBR with a signature and one valid partition record.
    head[0x1B8] = 0x78; head[0x1B9] = 0x56; head[0x1BA] = 0x34; head[0x1BB] = 0x12;
    head[0x1BE + 4] = 0x07; head[0x1BE + 8] = 1; head[0x1BE + 12] = 100;
    head[510] = 0x55; head[511] = 0xAA;
    CHECK(rescuevm::disk_id_of_head(head) == "12345678");
    CHECK(rescuevm::disk_id_of_head(std::span<const std::uint8_t>(head).first(100)) == "");
}

TEST_CASE("parse_qemu_io_dump puts each hex line at its offset")
{
    std::string dump = "00000000:  eb 63 90 10 00 00 00 00 00 00 00 00 00 00 00 00  .c..............\n"
                       "00000200:  45 46 49 20 50 41 52 54 00 00 01 00 5c 00 00 00  EFI.PART........\n"
                       "read 1024/1024 bytes at offset 0\n";
    auto bytes = rescuevm::parse_qemu_io_dump(dump, 1024);
    CHECK(bytes[0] == 0xeb);
    CHECK(bytes[3] == 0x10);
    CHECK(bytes[0x200] == 'E');
    CHECK(bytes[0x20c] == 0x5c);
    CHECK(bytes[0x100] == 0);
}
