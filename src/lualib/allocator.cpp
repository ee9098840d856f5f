// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "lualib/allocator_p.h"

#include <QIsle/QIsleLua>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

namespace {

// The previous startup's use of its block (any VM's: they open the same
// libraries, give or take a preset); the first startup guesses.
std::atomic<std::size_t> g_startupBytes{12 * 1024};

} // namespace

Allocator::~Allocator()
{
    releaseKept();
    std::free(m_startup);
}

void Allocator::beginStartup()
{
#if !QISLE_ASAN // AddressSanitizer sees every block
    if (m_startup)
        return;
    const std::size_t bytes = g_startupBytes.load(std::memory_order_relaxed);
    m_startup = static_cast<char *>(std::malloc(bytes));
    if (!m_startup)
        return; // then malloc() for each block, as after the startup
    m_startupNext = m_startup;
    m_startupEnd = m_startup + bytes;
#endif
}

void Allocator::endStartup()
{
    if (!m_startupNext)
        return;
    // A little room to spare: a startup that needs more mallocs the rest.
    const std::size_t used = std::size_t(m_startupNext - m_startup);
    g_startupBytes.store((used + 256 + 255) & ~std::size_t(255), std::memory_order_relaxed);
    m_startupNext = nullptr;
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
    if (m_startupNext && size <= StartupSmall) [[unlikely]] {
        const std::size_t bytes = (size + 7) & ~std::size_t(7);
        if (bytes <= std::size_t(m_startupEnd - m_startupNext))
            return std::exchange(m_startupNext, m_startupNext + bytes);
    }
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
        if (ptr && !a->fromStartup(ptr))
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
    } else if (a->fromStartup(ptr)) [[unlikely]] {
        block = newSize <= oldSize ? ptr : a->obtain(newSize); // it holds at least oldSize
        if (block != ptr && block)
            std::memcpy(block, ptr, oldSize);
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
    m_startup = std::exchange(from->m_startup, nullptr);
    m_startupEnd = std::exchange(from->m_startupEnd, nullptr);
    m_startupNext = std::exchange(from->m_startupNext, nullptr);
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
