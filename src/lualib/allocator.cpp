// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "lualib/allocator_p.h"

#include <QIsle/QIsleLua>

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
    // One compare on the hot path: "no limit" is SIZE_MAX. Lua asks for at
    // most 2^63 bytes at once, so the sum cannot wrap; shrinking always fits.
    if (used - held + newSize > a->m_ceiling)
        return nullptr;
    // malloc for new blocks (most of them): realloc(nullptr) takes a longer path.
    void *block = ptr ? std::realloc(ptr, newSize) : std::malloc(newSize);
    if (!block)
        return nullptr;
    // One writer (the Lua thread): a plain store, no locked add.
    usage.store(used - held + newSize, std::memory_order_relaxed);
    return block;
}

void Allocator::adopt(lua_State *L)
{
    void *previous = nullptr;
    lua_getallocf(L, &previous);
    m_usage->store(static_cast<const Allocator *>(previous)->used(), std::memory_order_relaxed);
    lua_setallocf(L, &Allocator::allocate, this);
}
