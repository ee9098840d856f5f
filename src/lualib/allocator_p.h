// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
//  W A R N I N G
//  This file is not part of the QIsle API: an implementation detail that may
//  change without notice.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

struct lua_State;

// AddressSanitizer, which must see every block Lua frees: GCC defines
// __SANITIZE_ADDRESS__, clang (the fuzzers' build) only has __has_feature.
#if defined(__SANITIZE_ADDRESS__)
#define QISLE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define QISLE_ASAN 1
#endif
#endif
#ifndef QISLE_ASAN
#define QISLE_ASAN 0
#endif

// The VM's lua_Alloc: counts the bytes the VM holds and refuses to grow past
// the limit, which Lua turns into its memory error.
class Allocator
{
public:
    using Usage = std::atomic<std::size_t>;

    // `usage` (optional): a counter of the owner's; QIsle makes it before
    // the VM, so QIsle::usedMemory() reads it from the start.
    explicit Allocator(std::size_t limit, std::shared_ptr<Usage> usage = {})
        : m_usage(usage ? std::move(usage) : std::make_shared<Usage>(0))
    {
        setLimit(limit);
    }
    ~Allocator();
    Allocator(const Allocator &) = delete;
    Allocator &operator=(const Allocator &) = delete;

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
    // started): its bytes count here from now on, and it allocates here,
    // its startup block included.
    void adopt(lua_State *L);

    // A VM's startup -- Lua's standard libraries, QIsle's -- makes a few
    // hundred small objects that live as long as the VM. Between these two
    // calls, blocks of up to StartupSmall bytes come from one block, handed
    // out in order (8-byte aligned, as Lua's LUAI_MAXALIGN) rather than a
    // malloc() each: no chunk header or rounding per object (issue 18, row
    // 7f: about 3 KiB less per idle isle) and a pointer bump instead of
    // malloc (row 7e: about a quarter of spawn's work on the calling
    // thread was malloc). Such a block, freed or moved, is left where it is
    // until the Allocator goes: the startup frees little (a few table parts
    // outgrown). The block is sized by the previous startup's use.
    void beginStartup();
    void endStartup();

private:
    // Small blocks (most of Lua's: strings, tables, closures, upvalues) are
    // kept on free lists of their size class when Lua frees them, and
    // handed out again before malloc() is asked: a script that makes and
    // drops many small objects then runs without glibc's per-thread arena,
    // which on the isle's own thread trims and regrows its top again and
    // again (issue 18, row 10a). Bounded: at most MaxKept blocks a class.
    struct FreeBlock
    {
        FreeBlock *next;
    };
    // The classes are glibc's own smallest chunks (32, 48, 64, 80 bytes:
    // 24, 40, 56, 72 usable), so a kept block costs what malloc() would.
    static constexpr int Classes = 4;
    static constexpr std::size_t Small = 72; // the largest size kept
    static constexpr std::size_t capacityOf(int c) { return std::size_t(c + 2) * 16 - 8; }
#if QISLE_ASAN
    static constexpr int MaxKept = 0; // AddressSanitizer sees every free
#else
    static constexpr int MaxKept = 1024;
#endif
    static int classOf(std::size_t size) { return size <= 24 ? 0 : int((size + 23) / 16) - 2; }
    void *obtain(std::size_t size);
    void release(void *block, std::size_t size);
    void releaseKept(); // every kept block back to malloc

    // The startup block: [m_startup, m_startupEnd), handed out up to
    // m_startupNext while open (null once closed or never opened).
    static constexpr std::size_t StartupSmall = 256;
    bool fromStartup(const void *block) const
    {
        const auto at = reinterpret_cast<std::uintptr_t>(block);
        return at >= reinterpret_cast<std::uintptr_t>(m_startup) && at < reinterpret_cast<std::uintptr_t>(m_startupEnd);
    }
    char *m_startup = nullptr;
    char *m_startupEnd = nullptr;
    char *m_startupNext = nullptr;

    static constexpr std::size_t NoLimit = ~std::size_t(0);
    std::size_t m_ceiling = NoLimit; // Lua thread only
    std::shared_ptr<Usage> m_usage; // written by the Lua thread only
    FreeBlock *m_kept[Classes] = {}; // the thread that runs the VM
    int m_keptCount[Classes] = {};
};
