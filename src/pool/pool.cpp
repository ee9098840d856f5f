// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "pool/pool_p.h"

#include "objects/mailbox_p.h"
#include "objects/objectlib_p.h"

#include <QtCore/QCoreApplication>
#include <QtCore/QPointer>
#include <QtCore/QLoggingCategory>
#include <QtCore/QEventLoop>

#include <algorithm>
#include <optional>

namespace {

QFuture<QVariant> failedFuture(QIsleError::Kind kind, const QString &message)
{
    QFutureInterface<QVariant> state;
    state.reportStarted();
    state.reportException(QIsleError(kind, message));
    state.reportFinished();
    return state.future();
}

QIsleError poolShutdownError()
{
    return QIsleError(QIsleError::Kind::Shutdown, QStringLiteral("the pool is shut down"));
}

// Past this many requests on one isle, only the finished ones at the front
// are dropped when its load is counted: requests finish in queue order with
// QIsle's default of one request at a time, so that is exact there, and a
// submission behind a deep queue stays O(1). Up to this many, every
// finished one is (requests that finish out of order).
constexpr std::size_t ExactScanLimit = 16;

// How often a blocked checkout looks again at isles whose requests it waits
// for: a request bound at submission returns its isle's own future, and no
// one is told when it finishes.
constexpr qint64 CheckoutPollMs = 1;

Q_LOGGING_CATEGORY(lcPool, "qisle.pool")

// A registration of the objects layer (a context function, an exposed
// object) on one isle, as QIsle's own registrations are made: inline on the
// isle's own Lua thread, else queued ahead of later requests. The object
// was referenced weakly once, when the pool was asked: a replay on an isle
// spawned later never touches a pointer that may be gone.
void registerOn(QIsle &isle, bool onItsLuaThread, const char *what, const QString &name, QIsle::ExecFunction fn)
{
    if (onItsLuaThread) {
        try {
            isle.exec(std::move(fn));
        } catch (const QIsleError &e) {
            qCWarning(lcPool, "%s('%s'): %s", what, qPrintable(name), qPrintable(e.message()));
        }
        return;
    }
    const QFuture<QVariant> future = isle.spawnExec(std::move(fn));
    if (future.isFinished() && future.isCanceled())
        qCWarning(lcPool, "%s('%s'): the isle is shut down", what, qPrintable(name));
}

} // namespace

QIslePoolPrivate::QIslePoolPrivate(QIslePool *q, QIsle::Init init, const QIslePoolOptions &options)
    : size(options.size > 0 ? options.size : std::max(1, QThread::idealThreadCount())),
      options(options), init(std::move(init)), forwarder(new SignalForwarder(q)), relay(std::make_shared<PoolRelay>(this)),
      slots(size_t(size))
{
}

QIslePoolPrivate::~QIslePoolPrivate()
{
    // ~QIslePool shut everything down; what is left are isles (shut down)
    // whose last lease went after the pool.
    std::vector<std::shared_ptr<QIsle>> isles;
    for (PoolSlot &slot : slots)
        isles.push_back(std::move(slot.isle));
}

std::shared_ptr<QIsle> QIslePoolPrivate::spawnIsle(QThread *&luaThread)
{
    QThread *seen = nullptr;
    const QIsle::Init &userInit = init; // const: several isles may run it at once
    std::unique_ptr<QIsle> isle;
    try {
        isle = QIsle::spawn([&seen, &userInit](lua_State *L) {
            seen = QThread::currentThread();
            if (userInit)
                userInit(L);
        }, options.isle);
    } catch (const QIsleError &) {
        throw;
    } catch (const std::exception &e) {
        throw QIsleError(QIsleError::Kind::Init, QString::fromLocal8Bit(e.what()));
    }
    luaThread = seen; // written before spawn() returned
    SignalForwarder *sink;
    {
        Lock lock(mutex);
        sink = forwarder;
    }
    // Before the isle moves: init's prints, still queued, are forwarded too.
    if (sink) {
        QObject::connect(isle.get(), &QIsle::printed, sink,
                         [sink](const QString &text) { sink->pushPrinted(text); }, Qt::DirectConnection);
        QObject::connect(isle.get(), &QIsle::handlerFailed, sink,
                         [sink](const QIsleError &error) { sink->pushFailure(error); }, Qt::DirectConnection);
    }
    relay->adopt(isle.get());
    std::shared_ptr<PoolRelay> r = relay;
    return std::shared_ptr<QIsle>(isle.release(), [r](QIsle *i) { r->destroy(i); });
}

void QIslePoolPrivate::spawnAll()
{
    std::vector<std::shared_ptr<QIsle>> isles(static_cast<size_t>(size));
    std::vector<QThread *> luaThreads(static_cast<size_t>(size), nullptr);
    std::vector<std::optional<QIsleError>> errors(static_cast<size_t>(size));
    auto one = [&](size_t i) {
        try {
            isles[i] = spawnIsle(luaThreads[i]);
        } catch (const QIsleError &e) {
            errors[i] = e;
        }
    };
    std::vector<std::thread> helpers;
    for (size_t i = 1; i < size_t(size); ++i)
        helpers.emplace_back(one, i);
    one(0);
    for (std::thread &helper : helpers)
        helper.join();
    {
        Lock lock(mutex);
        for (size_t i = 0; i < isles.size(); ++i) {
            if (isles[i])
                installLocked(int(i), std::move(isles[i]), luaThreads[i]);
        }
    }
    for (const auto &error : errors) {
        if (error)
            throw *error; // kind Init; ~QIslePool destroys what was spawned
    }
}

int QIslePoolPrivate::loadOf(PoolSlot &slot)
{
    auto &inflight = slot.inflight;
    while (!inflight.empty() && inflight.front().isFinished())
        inflight.pop_front();
    if (!inflight.empty() && inflight.size() <= ExactScanLimit) {
        inflight.erase(std::remove_if(inflight.begin(), inflight.end(),
                                      [](const QFuture<QVariant> &f) { return f.isFinished(); }),
                       inflight.end());
    }
    return int(inflight.size()) + int(slot.pending.size()) + slot.blocking;
}

QIslePoolPrivate::Target QIslePoolPrivate::targetLocked()
{
    if (shut)
        return {Target::Kind::Shutdown, -1};
    int best = -1;
    int bestLoad = 0;
    bool bestReady = false;
    for (int i = 0; i < size; ++i) {
        PoolSlot &slot = slots[size_t(i)];
        if (slot.leased)
            continue;
        const int load = loadOf(slot);
        const bool ready = slot.state == PoolSlot::State::Ready;
        // Fewest requests; ties: a spawned isle before a cold slot, then the lowest index.
        if (best < 0 || load < bestLoad || (load == bestLoad && ready && !bestReady)) {
            best = i;
            bestLoad = load;
            bestReady = ready;
        }
    }
    if (best < 0)
        return {Target::Kind::Held, -1};
    return {bestReady ? Target::Kind::Ready : Target::Kind::Cold, best};
}

QFuture<QVariant> QIslePoolPrivate::holdLocked(const Target &target, Submit submit)
{
    if (target.kind == Target::Kind::Shutdown)
        return failedFuture(QIsleError::Kind::Shutdown, QStringLiteral("the pool is shut down"));
    auto held = std::make_shared<HeldRequest>();
    held->submit = std::move(submit);
    relay->watch(held);
    if (target.kind == Target::Kind::Held) {
        held->state = HeldRequest::State::Waiting;
        waiting.push_back(held);
    } else {
        PoolSlot &slot = slots[size_t(target.slot)];
        held->state = HeldRequest::State::Pending;
        held->slot = target.slot;
        slot.pending.push_back(held);
        if (slot.state == PoolSlot::State::Cold)
            startSpawnLocked(target.slot);
    }
    return held->promise.future();
}

void QIslePoolPrivate::forwardLocked(const std::shared_ptr<HeldRequest> &held, PoolSlot &slot, HeldList &canceled)
{
    if (held->promise.isCanceled()) { // its relay has not seen it yet
        held->state = HeldRequest::State::Done;
        canceled.push_back(held);
        return;
    }
    const QFuture<QVariant> future = held->submit(*slot.isle);
    held->submit = nullptr;
    held->state = HeldRequest::State::Forwarded;
    if (!future.isFinished())
        slot.inflight.push_back(future);
    relay->forwarded(held, future);
}

void QIslePoolPrivate::installLocked(int index, std::shared_ptr<QIsle> isle, QThread *luaThread)
{
    PoolSlot &slot = slots[size_t(index)];
    slot.isle = std::move(isle);
    slot.luaThread = luaThread;
    slot.state = PoolSlot::State::Ready;
    ++slot.generation;
    // Queued behind init, in the order they were made, ahead of any request.
    for (const Registration &registration : registrations)
        registration(*slot.isle, false); // spawned elsewhere: never on its Lua thread
}

void QIslePoolPrivate::startSpawnLocked(int index)
{
    slots[size_t(index)].state = PoolSlot::State::Spawning;
    // Reap the spawners that ended (each set `done` as its last step).
    for (auto it = spawners.begin(); it != spawners.end();) {
        if (it->done) {
            it->thread.join();
            it = spawners.erase(it);
        } else {
            ++it;
        }
    }
    spawners.emplace_back();
    const auto self = std::prev(spawners.end());
    self->thread = std::thread([this, index, self] { spawnInBackground(index, self); });
}

void QIslePoolPrivate::spawnInBackground(int index, std::list<Spawner>::iterator self)
{
    std::shared_ptr<QIsle> isle;
    QThread *luaThread = nullptr;
    std::optional<QIsleError> error;
    try {
        isle = spawnIsle(luaThread);
    } catch (const QIsleError &e) {
        error = e;
    }
    HeldList canceled;
    HeldList failed;
    {
        Lock lock(mutex);
        PoolSlot &slot = slots[size_t(index)];
        if (isle) {
            installLocked(index, std::move(isle), luaThread);
            for (const auto &held : slot.pending)
                forwardLocked(held, slot, canceled);
            slot.pending.clear();
        } else {
            // Left empty, to be tried again at the next need; the requests
            // that needed it fail with the init error.
            slot.state = PoolSlot::State::Cold;
            failed.swap(slot.pending);
            for (const auto &held : failed)
                held->state = HeldRequest::State::Done;
        }
        self->done = true;
        changedLocked();
    }
    finishCanceled(canceled);
    if (error) {
        finishFailed(failed, *error);
        // Ours goes before the promises, so the error's data dies with the
        // futures' copies. A waiter may still be reading it in its catch;
        // only libstdc++'s (uninstrumented) exception count orders that read
        // before the delete, and tsan.supp names that count -- not this frame.
        error.reset();
    }
}

void QIslePoolPrivate::serveWaitingLocked(int index, HeldList &canceled)
{
    PoolSlot &slot = slots[size_t(index)];
    while (!waiting.empty()) {
        std::shared_ptr<HeldRequest> held = std::move(waiting.front());
        waiting.pop_front();
        if (slot.state == PoolSlot::State::Ready) {
            forwardLocked(held, slot, canceled);
        } else {
            held->state = HeldRequest::State::Pending;
            held->slot = index;
            slot.pending.push_back(std::move(held));
        }
    }
}

void QIslePoolPrivate::addRegistration(Registration registration)
{
    Lock lock(mutex);
    if (shut)
        return;
    const QThread *current = QThread::currentThread();
    for (PoolSlot &slot : slots) {
        if (slot.isle) // leased ones too; spawning ones get it in installLocked
            registration(*slot.isle, slot.luaThread == current);
    }
    registrations.push_back(std::move(registration));
}

QIsleLease QIslePoolPrivate::leaseLocked(int index)
{
    PoolSlot &slot = slots[size_t(index)];
    slot.leased = true;
    auto lease = std::make_unique<QIsleLeasePrivate>();
    lease->pool = shared_from_this();
    lease->isle = slot.isle;
    lease->slot = index;
    lease->generation = slot.generation;
    return QIsleLease(std::move(lease));
}

QIsleLease QIslePoolPrivate::checkout(QDeadlineTimer deadline, bool wait)
{
    std::shared_ptr<ThreadMailbox> mailbox; // this thread's, once it waits
    Lock lock(mutex);
    for (;;) {
        if (shut)
            return {};
        int ready = -1;
        int cold = -1;
        bool spawning = false; // a free slot whose isle is being spawned
        bool busy = false;     // an unleased isle with requests
        for (int i = 0; i < size; ++i) {
            PoolSlot &slot = slots[size_t(i)];
            if (slot.leased)
                continue;
            if (loadOf(slot) > 0) {
                busy = true;
                continue;
            }
            switch (slot.state) {
            case PoolSlot::State::Ready:
                if (ready < 0)
                    ready = i;
                break;
            case PoolSlot::State::Cold:
                if (cold < 0)
                    cold = i;
                break;
            case PoolSlot::State::Spawning:
                spawning = true;
                break;
            }
        }
        if (ready >= 0)
            return leaseLocked(ready);
        if (cold >= 0) {
            // Spawned here, in the caller's thread; reserved meanwhile.
            PoolSlot &slot = slots[size_t(cold)];
            slot.leased = true;
            slot.state = PoolSlot::State::Spawning;
            lock.unlock();
            std::shared_ptr<QIsle> isle;
            QThread *luaThread = nullptr;
            try {
                isle = spawnIsle(luaThread);
            } catch (const QIsleError &) {
                lock.lock();
                slot.leased = false;
                slot.state = PoolSlot::State::Cold;
                if (!shut && !waiting.empty()) { // they wait for an unleased slot: this one
                    HeldList none;
                    serveWaitingLocked(cold, none);
                    startSpawnLocked(cold);
                }
                changedLocked();
                throw;
            }
            lock.lock();
            if (shut) { // shut down meanwhile: no lease
                slot.leased = false;
                slot.state = PoolSlot::State::Cold;
                changedLocked();
                lock.unlock();
                isle.reset();
                return {};
            }
            installLocked(cold, std::move(isle), luaThread);
            return leaseLocked(cold);
        }
        // A free slot still being spawned is waited for, even by tryCheckout
        // (as a cold slot would be spawned by it); otherwise wait only until
        // the deadline.
        if (!spawning && (!wait || deadline.hasExpired()))
            return {};
        QDeadlineTimer until = spawning ? QDeadlineTimer(QDeadlineTimer::Forever) : deadline;
        if (busy) {
            const QDeadlineTimer poll(CheckoutPollMs);
            if (poll < until)
                until = poll;
        }
        // Sleep in this thread's mailbox: a script that holds the isle we
        // wait for may call into this thread (no deadlock, as QIsle's
        // blocking calls). Registered before the lock goes, so no change
        // made after `seen` is missed.
        if (!mailbox)
            mailbox = ThreadMailbox::current();
        const quint64 seen = changes.load(std::memory_order_relaxed);
        sleepers.push_back(mailbox);
        lock.unlock();
        mailbox->waitUntil([this, seen] { return changes.load(std::memory_order_acquire) != seen; }, until);
        lock.lock();
        sleepers.erase(std::find(sleepers.begin(), sleepers.end(), mailbox));
    }
}

void QIslePoolPrivate::changedLocked()
{
    changes.fetch_add(1, std::memory_order_release);
    for (const std::shared_ptr<ThreadMailbox> &sleeper : sleepers)
        sleeper->notify();
}

void QIslePoolPrivate::release(QIsleLeasePrivate &lease)
{
    HeldList canceled;
    {
        Lock lock(mutex);
        PoolSlot &slot = slots[size_t(lease.slot)];
        if (!shut && slot.leased && slot.generation == lease.generation && slot.state == PoolSlot::State::Ready) {
            // Before the isle is free: a new holder that discards it must
            // hold the last references. Not the last one here (the slot's).
            lease.isle.reset();
            slot.leased = false;
            // Requests waiting in the pool come before a blocked checkout.
            serveWaitingLocked(lease.slot, canceled);
            changedLocked();
        }
    }
    finishCanceled(canceled);
}

void QIslePoolPrivate::discard(QIsleLeasePrivate &lease)
{
    std::shared_ptr<QIsle> old;
    {
        Lock lock(mutex);
        PoolSlot &slot = slots[size_t(lease.slot)];
        if (!shut && slot.leased && slot.generation == lease.generation && slot.state == PoolSlot::State::Ready) {
            old = std::move(slot.isle);
            slot.luaThread = nullptr;
            slot.inflight.clear();
            slot.leased = false;
            startSpawnLocked(lease.slot);
            HeldList none; // the slot is Spawning: waiting requests become pending on it
            serveWaitingLocked(lease.slot, none);
            changedLocked();
        }
    }
    // The last references: ~QIsle runs now (in the relay thread) and cancels
    // the holder's requests.
    lease.isle.reset();
    old.reset();
}

int QIslePoolPrivate::leasedCount()
{
    Lock lock(mutex);
    return int(std::count_if(slots.begin(), slots.end(), [](const PoolSlot &slot) { return slot.leased; }));
}

int QIslePoolPrivate::idleCount()
{
    Lock lock(mutex);
    int idle = 0;
    for (PoolSlot &slot : slots) {
        if (!slot.leased && loadOf(slot) == 0)
            ++idle;
    }
    return idle;
}

bool QIslePoolPrivate::isAlive()
{
    Lock lock(mutex);
    return !shut;
}

void QIslePoolPrivate::shutdown(bool aborting)
{
    const std::lock_guard<std::mutex> serial(shutdownMutex);
    if (destroyed)
        return;
    HeldList failed;
    {
        Lock lock(mutex);
        shut = true;
        for (auto &held : waiting) {
            held->state = HeldRequest::State::Done;
            failed.push_back(std::move(held));
        }
        waiting.clear();
        if (aborting) { // bound to an isle still spawning: never run
            for (PoolSlot &slot : slots) {
                for (auto &held : slot.pending) {
                    held->state = HeldRequest::State::Done;
                    failed.push_back(std::move(held));
                }
                slot.pending.clear();
            }
        }
        changedLocked(); // blocked checkouts give up
    }
    finishFailed(failed, poolShutdownError());

    // Spawns in progress finish their init (a QIsle cannot be stopped during
    // spawn()); a successful one forwards its pending requests.
    std::list<Spawner> ending;
    {
        Lock lock(mutex);
        ending.splice(ending.end(), spawners); // iterators stay valid
    }
    for (Spawner &spawner : ending)
        spawner.thread.join();

    std::vector<std::shared_ptr<QIsle>> toDestroy;
    std::vector<std::shared_ptr<QIsle>> toShutdown;
    {
        Lock lock(mutex);
        for (PoolSlot &slot : slots) {
            if (!slot.isle)
                continue;
            if (aborting) {
                // Unleased: destroyed (requests canceled, promptly). Leased:
                // only its holder's requests are on it; shut down as asked,
                // alive until the lease goes.
                if (slot.leased && !isleShutdownDone)
                    toShutdown.push_back(slot.isle);
                toDestroy.push_back(std::move(slot.isle));
                slot.luaThread = nullptr;
                slot.inflight.clear();
                slot.state = PoolSlot::State::Cold;
            } else if (!isleShutdownDone) {
                toShutdown.push_back(slot.isle);
            }
        }
    }
    // Leased isles are still referenced by their leases: only the others die here.
    toDestroy.clear();
    for (const auto &isle : toShutdown)
        isle->shutdown();
    isleShutdownDone = true;

    // Relays whose isle futures finished above are posted: run them, then
    // end the thread. Every held future is finished after this; nothing is
    // held any more.
    relay->stop();
    destroyed = aborting;
}

void QIslePoolPrivate::detach()
{
    Lock lock(mutex);
    forwarder = nullptr; // deleted with the pool, its parent
}

SignalForwarder::SignalForwarder(QIslePool *pool) : QObject(pool), m_pool(pool) { }

void SignalForwarder::pushPrinted(const QString &text)
{
    push(Entry{text, std::nullopt});
}

void SignalForwarder::pushFailure(const QIsleError &error)
{
    push(Entry{QString(), error});
}

void SignalForwarder::push(Entry entry)
{
    const std::lock_guard<std::mutex> lock(m_mutex);
    m_entries.push_back(std::move(entry));
    if (!m_posted) {
        m_posted = true;
        QCoreApplication::postEvent(this, new QEvent(QEvent::User));
    }
}

bool SignalForwarder::event(QEvent *event)
{
    if (event->type() != QEvent::User)
        return QObject::event(event);
    std::vector<Entry> entries;
    {
        const std::lock_guard<std::mutex> lock(m_mutex);
        entries.swap(m_entries);
        m_posted = false;
    }
    // A slot may destroy the pool, and with it this forwarder (its child):
    // nothing of either is touched once it is gone.
    const QPointer<QIslePool> pool(m_pool);
    for (const Entry &entry : entries) {
        if (!pool)
            break;
        if (entry.error)
            Q_EMIT pool->handlerFailed(*entry.error);
        else
            Q_EMIT pool->printed(entry.text);
    }
    return true;
}

void QIslePoolPrivate::heldCanceled(HeldRequest &held)
{
    std::shared_ptr<HeldRequest> taken;
    {
        Lock lock(mutex);
        const auto same = [&held](const std::shared_ptr<HeldRequest> &h) { return h.get() == &held; };
        if (held.state == HeldRequest::State::Waiting) {
            const auto it = std::find_if(waiting.begin(), waiting.end(), same);
            taken = std::move(*it);
            waiting.erase(it);
        } else if (held.state == HeldRequest::State::Pending) {
            auto &pending = slots[size_t(held.slot)].pending;
            const auto it = std::find_if(pending.begin(), pending.end(), same);
            taken = std::move(*it);
            pending.erase(it);
        } else {
            return; // an isle took it: the relay cancels the isle's future
        }
        held.state = HeldRequest::State::Done;
        changedLocked(); // a pending one dropped: its slot's load fell
    }
    finishCanceled({taken});
}

void QIslePoolPrivate::heldFinished()
{
    Lock lock(mutex);
    changedLocked();
}

void QIslePoolPrivate::finishCanceled(const HeldList &held)
{
    for (const auto &h : held) {
        h->promise.cancel();
        h->promise.reportFinished();
    }
}

void QIslePoolPrivate::finishFailed(const HeldList &held, const QIsleError &error)
{
    for (const auto &h : held) {
        h->promise.reportException(error);
        h->promise.reportFinished();
    }
}

QVariant QIslePoolPrivate::waitHeld(QFuture<QVariant> future, PoolRelay &relay)
{
    // A blocking call from a continuation the relay runs: relay meanwhile,
    // or nothing would finish the future.
    if (relay.isRelayThread()) {
        while (!future.isFinished())
            QCoreApplication::processEvents(QEventLoop::WaitForMoreEvents);
    }
    return QIsle::waitFor(future);
}

// ---- QIslePool: one-line forwards ----

QIslePool::QIslePool() = default;

std::unique_ptr<QIslePool> QIslePool::spawn(QIsle::Init init, const QIslePoolOptions &options)
{
    std::unique_ptr<QIslePool> pool(new QIslePool);
    pool->d = std::make_shared<QIslePoolPrivate>(pool.get(), std::move(init), options);
    if (options.warm)
        pool->d->spawnAll(); // throws Init; ~QIslePool cleans up
    return pool;
}

QIslePool::~QIslePool()
{
    d->shutdown(true);
    d->detach();
}

QVariant QIslePool::eval(const QString &chunk)
{
    const std::shared_ptr<QIslePoolPrivate> d = this->d; // a call that waits outlives a racing ~QIslePool
    return d->block([&](QIsle &isle) { return isle.eval(chunk); },
                    [chunk](QIsle &isle) { return isle.spawnEval(chunk); });
}

QVariant QIslePool::call(const QString &function, const QVariantList &args)
{
    const std::shared_ptr<QIslePoolPrivate> d = this->d; // a call that waits outlives a racing ~QIslePool
    return d->block([&](QIsle &isle) { return isle.call(function, args); },
                    [function, args](QIsle &isle) { return isle.spawnCall(function, args); });
}

// The held form of a blocking exec refers to `fn` in this frame: block()
// waits until the request finished, and a held request calls its submit
// function only before that.
QVariant QIslePool::exec(QIsle::ExecFunction fn)
{
    const std::shared_ptr<QIslePoolPrivate> d = this->d; // a call that waits outlives a racing ~QIslePool
    return d->block([&](QIsle &isle) { return isle.exec(std::move(fn)); },
                    [&fn](QIsle &isle) { return isle.spawnExec(fn); });
}

QVariant QIslePool::eval(const QString &chunk, const QIsleRequestOptions &options)
{
    const std::shared_ptr<QIslePoolPrivate> d = this->d; // a call that waits outlives a racing ~QIslePool
    return d->block([&](QIsle &isle) { return isle.eval(chunk, options); },
                    [chunk, options](QIsle &isle) { return isle.spawnEval(chunk, options); });
}

QVariant QIslePool::call(const QString &function, const QVariantList &args, const QIsleRequestOptions &options)
{
    const std::shared_ptr<QIslePoolPrivate> d = this->d; // a call that waits outlives a racing ~QIslePool
    return d->block([&](QIsle &isle) { return isle.call(function, args, options); },
                    [function, args, options](QIsle &isle) { return isle.spawnCall(function, args, options); });
}

QVariant QIslePool::exec(QIsle::ExecFunction fn, const QIsleRequestOptions &options)
{
    const std::shared_ptr<QIslePoolPrivate> d = this->d; // a call that waits outlives a racing ~QIslePool
    return d->block([&](QIsle &isle) { return isle.exec(std::move(fn), options); },
                    [&fn, options](QIsle &isle) { return isle.spawnExec(fn, options); });
}

// A request that must wait keeps its submit function: captures are owned.
QFuture<QVariant> QIslePool::spawnEval(const QString &chunk)
{
    return d->submit([chunk](QIsle &isle) { return isle.spawnEval(chunk); });
}

QFuture<QVariant> QIslePool::spawnCall(const QString &function, const QVariantList &args)
{
    return d->submit([function, args](QIsle &isle) { return isle.spawnCall(function, args); });
}

QFuture<QVariant> QIslePool::spawnExec(QIsle::ExecFunction fn)
{
    return d->submit([fn = std::move(fn)](QIsle &isle) mutable { return isle.spawnExec(std::move(fn)); });
}

QFuture<QVariant> QIslePool::spawnEval(const QString &chunk, const QIsleRequestOptions &options)
{
    return d->submit([chunk, options](QIsle &isle) { return isle.spawnEval(chunk, options); });
}

QFuture<QVariant> QIslePool::spawnCall(const QString &function, const QVariantList &args,
                                       const QIsleRequestOptions &options)
{
    return d->submit([function, args, options](QIsle &isle) { return isle.spawnCall(function, args, options); });
}

QFuture<QVariant> QIslePool::spawnExec(QIsle::ExecFunction fn, const QIsleRequestOptions &options)
{
    return d->submit([fn = std::move(fn), options](QIsle &isle) mutable {
        return isle.spawnExec(std::move(fn), options);
    });
}

void QIslePool::registerFunction(const QString &name, QIsle::HostFunction fn)
{
    d->addRegistration([name, fn = std::move(fn)](QIsle &isle, bool) { isle.registerFunction(name, fn); });
}

void QIslePool::registerAsyncFunction(const QString &name, QIsle::AsyncHostFunction fn)
{
    d->addRegistration([name, fn = std::move(fn)](QIsle &isle, bool) { isle.registerAsyncFunction(name, fn); });
}

void QIslePool::registerFunction(const QString &name, QObject *context, QIsle::HostFunction fn)
{
    if (!context) {
        registerFunction(name, std::move(fn));
        return;
    }
    const ObjectRef ref = ObjectRef::make(context); // weakly, now, in this thread
    auto shared = std::make_shared<const QIsle::HostFunction>(std::move(fn));
    d->addRegistration([name, ref, shared](QIsle &isle, bool onItsLuaThread) {
        registerOn(isle, onItsLuaThread, "registerFunction", name, [name, ref, shared](lua_State *L) {
            ObjectLib::registerContextFunction(L, name, ref, *shared);
            return QVariant();
        });
    });
}

void QIslePool::registerAsyncFunction(const QString &name, QObject *context, QIsle::AsyncHostFunction fn)
{
    if (!context) {
        registerAsyncFunction(name, std::move(fn));
        return;
    }
    const ObjectRef ref = ObjectRef::make(context); // weakly, now, in this thread
    auto shared = std::make_shared<const QIsle::AsyncHostFunction>(std::move(fn));
    d->addRegistration([name, ref, shared](QIsle &isle, bool onItsLuaThread) {
        registerOn(isle, onItsLuaThread, "registerAsyncFunction", name, [name, ref, shared](lua_State *L) {
            ObjectLib::registerAsyncContextFunction(L, name, ref, *shared);
            return QVariant();
        });
    });
}

void QIslePool::exposeObject(const QString &name, QObject *object)
{
    const ObjectRef ref = ObjectRef::make(object); // weakly, now, in this thread
    d->addRegistration([name, ref](QIsle &isle, bool onItsLuaThread) {
        registerOn(isle, onItsLuaThread, "exposeObject", name, [name, ref](lua_State *L) {
            ObjectLib::expose(L, name, ref);
            return QVariant();
        });
    });
}

QIsleLease QIslePool::checkout()
{
    const std::shared_ptr<QIslePoolPrivate> d = this->d; // a call that waits outlives a racing ~QIslePool
    return d->checkout(QDeadlineTimer(QDeadlineTimer::Forever), true);
}

QIsleLease QIslePool::checkout(std::chrono::milliseconds timeout)
{
    if (timeout.count() <= 0)
        return tryCheckout();
    const std::shared_ptr<QIslePoolPrivate> d = this->d;
    return d->checkout(QDeadlineTimer(timeout), true);
}

QIsleLease QIslePool::tryCheckout()
{
    const std::shared_ptr<QIslePoolPrivate> d = this->d; // a call that waits outlives a racing ~QIslePool
    return d->checkout(QDeadlineTimer(), false);
}

int QIslePool::size() const
{
    return d->size;
}

int QIslePool::leasedCount() const
{
    return d->leasedCount();
}

int QIslePool::idleCount() const
{
    return d->idleCount();
}

void QIslePool::shutdown()
{
    d->shutdown(false);
}

bool QIslePool::isAlive() const
{
    return d->isAlive();
}
