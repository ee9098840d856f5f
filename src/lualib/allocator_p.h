// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
//  W A R N I N G
//  This file is not part of the QIsle API: an implementation detail that may
//  change without notice.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>

struct lua_State;

// The VM's lua_Alloc: counts the bytes the VM holds and refuses to grow past
// the limit, which Lua turns into its memory error.
class Allocator
{
public:
    using Usage = std::atomic<std::size_t>;

    explicit Allocator(std::size_t limit) : m_usage(std::make_shared<Usage>(0)) { setLimit(limit); }

    static void *allocate(void *self, void *ptr, std::size_t oldSize, std::size_t newSize);

    // Any thread: the bytes in use now.
    std::size_t used() const { return m_usage->load(std::memory_order_relaxed); }
    // Any thread: the counter itself, which outlives the VM (QIsle::usedMemory).
    std::shared_ptr<const Usage> usage() const { return m_usage; }
    std::size_t limit() const { return m_ceiling == NoLimit ? 0 : m_ceiling; }
    // Lua thread: 0 lifts the limit (closing the VM must not fail).
    void setLimit(std::size_t limit) { m_ceiling = limit ? limit : NoLimit; }
    // Lua thread: takes over a state made through another Allocator (one
    // that QIsle::spawn built on its own thread while the isle's thread
    // started): its bytes count here from now on, and it allocates here.
    void adopt(lua_State *L);

private:
    static constexpr std::size_t NoLimit = ~std::size_t(0);
    std::size_t m_ceiling = NoLimit; // Lua thread only
    std::shared_ptr<Usage> m_usage; // written by the Lua thread only
};
