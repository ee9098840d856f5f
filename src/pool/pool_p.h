// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
//  W A R N I N G
//  This file is not part of the QIsle API: an implementation detail that may
//  change without notice.
#pragma once

#include "pool/relay_p.h"

class ThreadMailbox;

#include <QIsle/qislepool.h>

#include <QtCore/QDeadlineTimer>

#include <atomic>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

// One place of the pool: an isle, or none yet (cold), or one being spawned.
struct PoolSlot
{
    enum class State { Cold, Spawning, Ready };

    State state = State::Cold;
    std::shared_ptr<QIsle> isle;    // Ready; its deleter hands it to PoolRelay::destroy
    bool leased = false;            // also while a checkout spawns it
    quint64 generation = 0;         // bumped with each new isle: a lease of an old one changes nothing
    QThread *luaThread = nullptr;   // the isle's Lua thread (inline blocking calls)
    // Futures of the pool's requests queued or running on the isle, oldest
    // first. The isle's load drops when one finishes (pruned lazily):
    // nothing needs to run between the isle finishing a request and its
    // caller seeing it.
    std::deque<QFuture<QVariant>> inflight;
    int blocking = 0;               // blocking pool calls running on the isle
    std::vector<std::shared_ptr<HeldRequest>> pending; // bound here while Spawning
};

// Delivers the isles' print() lines and handler failures as
// QIslePool::printed and QIslePool::handlerFailed in the pool's thread, in
// the order they came. The isles' signals arrive in the relay thread; they
// cross under a mutex (visible to ThreadSanitizer, unlike a queued signal's
// arguments inside Qt) and one posted event a burst wakes the pool's thread.
// A child of the pool: it lives, and moves, with it.
class SignalForwarder : public QObject
{
public:
    explicit SignalForwarder(QIslePool *pool);
    // Any thread (the relay thread).
    void pushPrinted(const QString &text);
    void pushFailure(const QIsleError &error);

protected:
    // The pool's thread.
    bool event(QEvent *event) override;

private:
    struct Entry
    {
        QString text;                    // printed, unless error is set
        std::optional<QIsleError> error; // handlerFailed
    };
    void push(Entry entry);

    QIslePool *const m_pool;
    std::mutex m_mutex;
    std::vector<Entry> m_entries; // m_mutex
    bool m_posted = false;        // m_mutex: an event is on its way
};

// A lease's state: which isle of which pool.
class QIsleLeasePrivate
{
public:
    std::shared_ptr<QIslePoolPrivate> pool; // keeps the pool's state alive, not the pool
    std::shared_ptr<QIsle> isle;
    int slot = -1;
    quint64 generation = 0;
};

// The pool's state. Shared by the QIslePool and its leases (a lease may
// outlive the pool). Every member: any thread; mutable state guarded by
// `mutex` unless noted. Lock order: `mutex`, then an isle's own locks (an
// isle's spawn*/registerFunction are called under it: they only queue).
// Never held while waiting for an isle, finishing a future (continuations
// run there), or dropping the last reference to an isle.
class QIslePoolPrivate : public std::enable_shared_from_this<QIslePoolPrivate>
{
public:
    using Submit = HeldRequest::Submit;
    using Lock = std::unique_lock<std::mutex>;
    // Applied to every isle, in the order made: now to those that exist,
    // later to each new one right after its init. onItsLuaThread: called on
    // that isle's own Lua thread (a host function registering on the pool),
    // where QIsle's registrations run inline.
    using Registration = std::function<void(QIsle &, bool onItsLuaThread)>;

    QIslePoolPrivate(QIslePool *q, QIsle::Init init, const QIslePoolOptions &options);
    ~QIslePoolPrivate();

    // Spawns every slot (in parallel), for a warm pool; throws the first
    // init error.
    void spawnAll();

    // A non-blocking request: bound to the least loaded unleased isle now
    // (its own future), or held (every isle leased, or its isle spawning).
    template <typename Fn>
    QFuture<QVariant> submit(Fn &&fn);
    // A blocking request: inline on one of the pool's Lua threads, else on
    // the least loaded isle, else held and waited for.
    template <typename Block, typename Fn>
    QVariant block(Block &&blockFn, Fn &&submitFn);

    void addRegistration(Registration registration);

    QIsleLease checkout(QDeadlineTimer deadline, bool wait);
    void release(QIsleLeasePrivate &lease);
    void discard(QIsleLeasePrivate &lease);

    int leasedCount();
    int idleCount();
    bool isAlive();
    // aborting (destruction): the pool's requests are canceled; else they run.
    void shutdown(bool aborting);
    // The QIslePool is gone (its destructor, after shutdown).
    void detach();

    // Relay thread: a held request's caller canceled it; finishes it unless
    // an isle took it already.
    void heldCanceled(HeldRequest &held);
    // Relay thread: a forwarded request finished (wakes blocked checkouts).
    void heldFinished();

    const int size;
    const QIslePoolOptions options;
    const QIsle::Init init;

private:
    struct Target
    {
        enum class Kind { Shutdown, Held, Ready, Cold } kind;
        int slot;
    };
    struct Spawner
    {
        std::thread thread;
        bool done = false; // mutex
    };
    using HeldList = std::vector<std::shared_ptr<HeldRequest>>;

    // mutex held:
    int loadOf(PoolSlot &slot);
    Target targetLocked();
    QFuture<QVariant> holdLocked(const Target &target, Submit submit);
    void forwardLocked(const std::shared_ptr<HeldRequest> &held, PoolSlot &slot, HeldList &canceled);
    void installLocked(int index, std::shared_ptr<QIsle> isle, QThread *luaThread);
    void startSpawnLocked(int index);
    void serveWaitingLocked(int index, HeldList &canceled);
    QIsleLease leaseLocked(int index);

    // no lock held:
    std::shared_ptr<QIsle> spawnIsle(QThread *&luaThread);
    void spawnInBackground(int index, std::list<Spawner>::iterator self);
    static void finishCanceled(const HeldList &held);
    static void finishFailed(const HeldList &held, const QIsleError &error);
    static QVariant waitHeld(QFuture<QVariant> future, PoolRelay &relay);

    // A slot was released, spawned, freed; shutdown: wakes blocked checkouts.
    void changedLocked();

    SignalForwarder *forwarder;           // mutex; owned by the pool; nullptr once the pool is destroyed
    const std::shared_ptr<PoolRelay> relay;
    // std:: rather than QMutex/QWaitCondition: QWaitCondition unlocks its
    // mutex inside (uninstrumented) Qt, which ThreadSanitizer cannot follow.
    std::mutex mutex;
    // A blocked checkout() sleeps in its thread's mailbox (running the calls
    // scripts post to that thread, as QIsle's blocking calls do) until
    // `changes` moves: changedLocked() bumps it and wakes every sleeper.
    std::atomic<quint64> changes{0};      // written under mutex, read by sleepers without it
    std::vector<std::shared_ptr<ThreadMailbox>> sleepers; // one entry per blocked checkout
    std::vector<PoolSlot> slots;          // fixed size
    std::deque<std::shared_ptr<HeldRequest>> waiting; // FIFO; non-empty only while every slot is leased
    std::vector<Registration> registrations;
    std::list<Spawner> spawners;          // background spawns; joined by shutdown, reaped as they end
    bool shut = false;                    // no new work
    std::mutex shutdownMutex;             // serializes shutdown(); taken before `mutex`
    bool isleShutdownDone = false;        // shutdownMutex
    bool destroyed = false;               // shutdownMutex
};

template <typename Fn>
QFuture<QVariant> QIslePoolPrivate::submit(Fn &&fn)
{
    Lock lock(mutex);
    const Target target = targetLocked();
    if (target.kind != Target::Kind::Ready)
        return holdLocked(target, Submit(std::forward<Fn>(fn)));
    PoolSlot &slot = slots[size_t(target.slot)];
    QFuture<QVariant> future = fn(*slot.isle);
    if (!future.isFinished()) // Busy and Shutdown come back finished
        slot.inflight.push_back(future);
    return future;
}

template <typename Block, typename Fn>
QVariant QIslePoolPrivate::block(Block &&blockFn, Fn &&submitFn)
{
    // Plain pointers, no references: an isle a blocking call runs on is not
    // free, so it cannot be leased and discarded meanwhile; and a reference
    // held by a Lua thread could make that thread run its own isle's
    // destructor.
    QIsle *isle = nullptr;
    PoolSlot *slot = nullptr;
    std::optional<QFuture<QVariant>> held; // a default QFuture allocates Qt's shared state
    {
        Lock lock(mutex);
        // On one of our Lua threads: that isle runs it inline, nested (and
        // refuses it with Shutdown if the isle is being destroyed).
        const QThread *current = QThread::currentThread();
        for (PoolSlot &s : slots) {
            if (s.luaThread == current && s.isle) {
                isle = s.isle.get();
                break;
            }
        }
        if (!isle) {
            const Target target = targetLocked();
            if (target.kind == Target::Kind::Ready) {
                slot = &slots[size_t(target.slot)];
                isle = slot->isle.get();
                ++slot->blocking;
            } else {
                held = holdLocked(target, Submit(std::forward<Fn>(submitFn)));
            }
        }
    }
    if (!isle)
        return waitHeld(std::move(*held), *relay);
    if (!slot)
        return blockFn(*isle);
    // The load drops once the call returned, whatever it returned.
    struct Done
    {
        QIslePoolPrivate *pool;
        PoolSlot *slot;
        ~Done()
        {
            Lock lock(pool->mutex);
            --slot->blocking;
            pool->changedLocked();
        }
    } done{this, slot};
    return blockFn(*isle);
}
