// SPDX-License-Identifier: GPL-2.0-or-later
// ConsoleTail and printable_console_line(): the guest console's last lines kept in memory and shown safely. Pure.
#include "rescuevm/core/console_tail.h"
#include "rescuevm/core/guest_agent_protocol.h"

namespace rescuevm {

void ConsoleTail::feed(std::string_view bytes)
{
    seen_ += bytes.size();
    while (!bytes.empty()) {
        std::size_t nl = bytes.find('\n');
        std::string_view part = bytes.substr(0, nl);
        if (!cut_) {
            std::size_t room = max_line_ - current_.size();
            current_.append(part.substr(0, room));
            cut_ = part.size() > room;
        }
        if (nl == std::string_view::npos)
            return;
        push_line();
        bytes.remove_prefix(nl + 1);
    }
}

void ConsoleTail::push_line()
{
    lines_.push_back(std::move(current_));
    current_.clear();
    cut_ = false;
    while (lines_.size() > max_lines_)
        lines_.pop_front();
}

std::vector<std::string> ConsoleTail::last(std::size_t count) const
{
    std::vector<std::string> out;
    std::string partial = printable_console_line(current_);
    std::size_t want = count;
    if (!partial.empty() && want > 0)
        --want;
    std::size_t from = lines_.size() > want ? lines_.size() - want : 0;
    for (std::size_t i = from; i < lines_.size(); ++i)
        out.push_back(printable_console_line(lines_[i]));
    if (!partial.empty() && count > 0)
        out.push_back(std::move(partial));
    return out;
}

std::string printable_console_line(std::string_view raw)
{
    std::string out;
    auto at = [&](std::size_t k) { return static_cast<unsigned char>(raw[k]); };
    for (std::size_t i = 0; i < raw.size(); ++i) {
        unsigned char c = at(i);
        if (c == '\r') {
            if (i + 1 < raw.size()) // "text\r\n" keeps text; "old\rnew" shows new
                out.clear();
            continue;
        }
        bool c1_utf8 = c == 0xC2 && i + 1 < raw.size() && at(i + 1) >= 0x80 && at(i + 1) <= 0x9F;
        if (c == 0x1B || c == 0x9B || (c1_utf8 && at(i + 1) == 0x9B)) {
            // An escape sequence: skipped whole.
            std::size_t j = i + (c == 0xC2 ? 2 : 1);
            bool csi = c != 0x1B;
            if (!csi && j < raw.size()) {
                char kind = raw[j];
                if (kind == '[') {
                    csi = true;
                    ++j;
                } else if (kind == ']' || kind == 'P' || kind == '_' || kind == '^' || kind == 'X') {
                    // OSC, DCS, APC, PM, SOS: up to BEL or ST (ESC \)
                    for (++j; j < raw.size(); ++j) {
                        if (raw[j] == '\a')
                            break;
                        if (raw[j] == '\x1b' && j + 1 < raw.size() && raw[j + 1] == '\\') {
                            ++j;
                            break;
                        }
                    }
                } else {
                    // ESC ( B, ESC c, ESC 7...: intermediates 0x20-0x2F, then one final byte
                    while (j < raw.size() && at(j) >= 0x20 && at(j) <= 0x2F)
                        ++j;
                }
            }
            if (csi)
                while (j < raw.size() && !(at(j) >= 0x40 && at(j) <= 0x7E))
                    ++j; // parameters and intermediates, up to the final byte
            i = j;
            continue;
        }
        if (c1_utf8) {
            ++i; // another C1 control, UTF-8 encoded: dropped
            continue;
        }
        if (c >= 0x80) {
            std::size_t n = utf8_sequence_length(raw, i);
            if (n > 0) {
                out.append(raw.substr(i, n));
                i += n - 1;
            } else if (c > 0x9F) {
                out += '?'; // invalid UTF-8; raw C1 controls are dropped
            }
            continue;
        }
        if (c == '\t')
            out += ' ';
        else if (c == 0x7F || (c < 0x20 && c != '\0' && c != '\a'))
            out += '?';
        else if (c >= 0x20)
            out += static_cast<char>(c);
    }
    return out;
}

} // namespace rescuevm
