// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "allocator_p.h"

#include <cstdlib>

void *Allocator::allocate(void *self, void *ptr, std::size_t oldSize, std::size_t newSize)
{
    auto *a = static_cast<Allocator *>(self);
    // Lua passes the block's size when ptr is set, a type tag otherwise.
    const std::size_t held = ptr ? oldSize : 0;
    const std::size_t used = a->m_used.load(std::memory_order_relaxed);
    if (newSize == 0) {
        std::free(ptr);
        a->m_used.store(used - held, std::memory_order_relaxed);
        return nullptr;
    }
    if (a->m_limit && newSize > held && used - held + newSize > a->m_limit)
        return nullptr;
    void *block = std::realloc(ptr, newSize);
    if (!block)
        return nullptr;
    // One writer (the Lua thread): a plain store, no locked add.
    a->m_used.store(used - held + newSize, std::memory_order_relaxed);
    return block;
}
