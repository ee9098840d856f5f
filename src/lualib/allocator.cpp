// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "lualib/allocator_p.h"

#include <QIsle/QIsleLua>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

Allocator::~Allocator()
{
    releaseKept();
}

void Allocator::releaseKept()
{
    for (int c = 0; c < Classes; ++c) {
        while (m_kept[c])
            std::free(std::exchange(m_kept[c], m_kept[c]->next));
        m_keptCount[c] = 0;
    }
}

void *Allocator::obtain(std::size_t size)
{
    std::size_t bytes = size;
    if (size <= Small) {
        const int c = classOf(size);
        if (FreeBlock *block = m_kept[c]) {
            m_kept[c] = block->next;
            --m_keptCount[c];
            return block;
        }
        bytes = capacityOf(c); // the class's whole size: any block of it serves any size in it
    }
    if (void *block = std::malloc(bytes))
        return block;
    // Out of memory: what is kept goes back to malloc first, then Lua's
    // emergency collection runs if this fails too.
    releaseKept();
    return std::malloc(bytes);
}

void Allocator::release(void *block, std::size_t size)
{
    if (size <= Small) {
        const int c = classOf(size);
        if (m_keptCount[c] < MaxKept) {
            m_kept[c] = new (block) FreeBlock{m_kept[c]};
            ++m_keptCount[c];
            return;
        }
    }
    std::free(block);
}

void *Allocator::allocate(void *self, void *ptr, std::size_t oldSize, std::size_t newSize)
{
    auto *a = static_cast<Allocator *>(self);
    // Lua passes the block's size when ptr is set, a type tag otherwise.
    const std::size_t held = ptr ? oldSize : 0;
    Usage &usage = *a->m_usage;
    const std::size_t used = usage.load(std::memory_order_relaxed);
    if (newSize == 0) {
        if (ptr)
            a->release(ptr, oldSize);
        usage.store(used - held, std::memory_order_relaxed);
        return nullptr;
    }
    // One compare on the hot path: "no limit" is SIZE_MAX. Lua asks for at
    // most 2^63 bytes at once, so the sum cannot wrap; shrinking always fits.
    if (used - held + newSize > a->m_ceiling)
        return nullptr;
    void *block = nullptr;
    if (!ptr) {
        block = a->obtain(newSize);
    } else if (oldSize > Small && newSize > Small) {
        block = std::realloc(ptr, newSize);
        if (!block) {
            a->releaseKept();
            block = std::realloc(ptr, newSize);
        }
    } else if (oldSize <= Small && newSize <= Small && classOf(oldSize) == classOf(newSize)) {
        block = ptr; // it fits where it is
    } else {
        block = a->obtain(newSize);
        if (block) {
            std::memcpy(block, ptr, std::min(oldSize, newSize));
            a->release(ptr, oldSize);
        }
    }
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
    auto *from = static_cast<Allocator *>(previous);
    m_usage->store(from->used(), std::memory_order_relaxed);
    // Its kept blocks too: freeing them on this thread would be a
    // cross-thread free() each, on spawn's path.
    for (int c = 0; c < Classes; ++c) {
        while (from->m_kept[c] && m_keptCount[c] < MaxKept) {
            FreeBlock *block = std::exchange(from->m_kept[c], from->m_kept[c]->next);
            --from->m_keptCount[c];
            m_kept[c] = new (block) FreeBlock{m_kept[c]};
            ++m_keptCount[c];
        }
    }
    lua_setallocf(L, &Allocator::allocate, this);
}
