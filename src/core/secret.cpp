// SPDX-License-Identifier: GPL-2.0-or-later
// Secret: storage for a password that wipes itself and cannot be printed.
#include "rescuevm/core/secret.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace rescuevm {

void wipe_memory(void *data, std::size_t size)
{
    if (data != nullptr && size > 0)
        ::explicit_bzero(data, size);
}

Secret::Secret(std::string_view bytes)
{
    append(bytes);
}

Secret::Secret(Secret &&other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      capacity_(std::exchange(other.capacity_, 0))
{
}

Secret &Secret::operator=(Secret &&other) noexcept
{
    if (this != &other) {
        release();
        data_ = std::exchange(other.data_, nullptr);
        size_ = std::exchange(other.size_, 0);
        capacity_ = std::exchange(other.capacity_, 0);
    }
    return *this;
}

Secret::~Secret()
{
    release();
}

void Secret::release()
{
    wipe_memory(data_, capacity_);
    delete[] data_;
    data_ = nullptr;
    size_ = capacity_ = 0;
}

void Secret::clear()
{
    wipe_memory(data_, capacity_);
    size_ = 0;
}

// Grows by copying into a fresh buffer and wiping the old one, so no stale
// copy is left behind in freed heap memory (std::vector would not wipe it).
void Secret::reserve(std::size_t capacity)
{
    if (capacity <= capacity_)
        return;
    std::size_t grown = std::max({capacity, capacity_ * 2, std::size_t{64}});
    char *fresh = new char[grown]();
    if (size_ > 0)
        std::memcpy(fresh, data_, size_);
    wipe_memory(data_, capacity_);
    delete[] data_;
    data_ = fresh;
    capacity_ = grown;
}

void Secret::append(std::string_view bytes)
{
    if (bytes.empty())
        return;
    reserve(size_ + bytes.size());
    std::memcpy(data_ + size_, bytes.data(), bytes.size());
    size_ += bytes.size();
}

} // namespace rescuevm
