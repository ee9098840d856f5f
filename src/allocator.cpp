// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "allocator_p.h"

#include <cstdlib>

void *Allocator::allocate(void *self, void *ptr, std::size_t oldSize, std::size_t newSize)
{
    auto *a = static_cast<Allocator *>(self);
    // Lua passes the block's size when ptr is set, a type tag otherwise.
    const std::size_t held = ptr ? oldSize : 0;
    Usage &usage = *a->m_usage;
    const std::size_t used = usage.load(std::memory_order_relaxed);
    if (newSize == 0) {
        std::free(ptr);
        usage.store(used - held, std::memory_order_relaxed);
        return nullptr;
    }
    // Shrinking always succeeds; growth is checked without overflow even for
    // absurd sizes (string.rep of 2^62).
    const std::size_t others = used - held;
    if (a->m_limit && newSize > held && (others > a->m_limit || newSize > a->m_limit - others))
        return nullptr;
    void *block = std::realloc(ptr, newSize);
    if (!block)
        return nullptr;
    // One writer (the Lua thread): a plain store, no locked add.
    usage.store(used - held + newSize, std::memory_order_relaxed);
    return block;
}
