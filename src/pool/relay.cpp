// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "pool/relay_p.h"

#include "pool/pool_p.h"

#include "isle/futurestore_p.h"

#include "objects/mailbox_p.h"

#include <QtCore/QSocketNotifier>
#include <QtCore/QTimer>

#ifdef Q_OS_UNIX
#  include <fcntl.h>
#  include <unistd.h>
#endif

#include <algorithm>
#include <cerrno>
#include <future>

namespace {

// Held requests one look may cover per millisecond between looks.
constexpr int RequestsPerMs = 500;

void relayProgress(QFutureInterface<QVariant> &promise, const QFuture<QVariant> &from)
{
    // An observer Qt's synchronisation is visible through (to ThreadSanitizer
    // too) before the plain reads of the progress.
    (void)from.isFinished();
    const int minimum = from.progressMinimum();
    const int maximum = from.progressMaximum();
    if (minimum != promise.progressMinimum() || maximum != promise.progressMaximum())
        promise.setProgressRange(minimum, maximum);
    const int value = from.progressValue();
    const QString text = from.progressText();
    if (value != promise.progressValue() || text != promise.progressText())
        promise.setProgressValueAndText(value, text);
}

// The emits of `from` not relayed yet (after `relayed`) into `promise`, at
// the same indices, each copied under the future's lock (see
// isle/futurestore_p.h); returns how many are relayed now. Emits are
// contiguous from 1: the walk stops at the first one not there yet.
int relayEmits(QFutureInterface<QVariant> &promise, const QFuture<QVariant> &from, int relayed)
{
    QFutureInterface<QVariant> state(QFutureInterfaceBase::get(from));
    for (;;) {
        std::optional<QVariant> value = FutureStore::resultAt(state, relayed + 1);
        if (!value)
            return relayed;
        ++relayed;
        promise.reportResult(*value, relayed);
    }
}

} // namespace

void finishFrom(QFutureInterface<QVariant> &promise, const QFuture<QVariant> &isleFuture, int relayed)
{
    if (promise.isFinished())
        return;
    QFuture<QVariant> from = isleFuture;
    relayProgress(promise, from);
    try {
        from.waitForFinished(); // finished already; rethrows its error
    } catch (...) {
        // Emits relayed already go as the isle's did (readers may be at them).
        FutureStore::reportFailure(promise, std::current_exception());
        promise.reportFinished();
        return;
    }
    // Emits (1..n) may be there without result 0 (a canceled request).
    relayEmits(promise, from, relayed);
    QFutureInterface<QVariant> state(QFutureInterfaceBase::get(from));
    if (std::optional<QVariant> result = FutureStore::resultAt(state, 0)) {
        promise.reportResult(*result, 0);
    } else if (from.isCanceled()) {
        promise.cancel();
    }
    promise.reportFinished();
}

// The relay thread. Closures from other threads (PoolRelay::post) cross
// under a std::mutex and wake the thread through a pipe it watches, not
// through Qt's posted-event queue: ThreadSanitizer sees both hand-offs
// (Qt's queue is guarded by mutexes inside uninstrumented Qt). `ready` and
// `ended` order the thread's start and end the same way (QThread::wait()
// is a wait condition inside Qt).
class RelayThread : public QThread
{
public:
    explicit RelayThread(PoolRelay *relay) : m_relay(relay) { }

    std::promise<void> ready;
    std::promise<void> ended;

protected:
    void run() override
    {
        {
            QObject context; // elsewhere than Unix, posted closures are queued calls to it
            m_relay->m_context = &context;
#ifdef Q_OS_UNIX
            QSocketNotifier wake(qintptr(m_relay->m_wakeRead), QSocketNotifier::Read);
            QObject::connect(&wake, &QSocketNotifier::activated, &wake, [this] { m_relay->runPosted(); });
#endif
            QTimer timer;
            timer.setTimerType(Qt::PreciseTimer);
            QObject::connect(&timer, &QTimer::timeout, &timer, [this] { m_relay->poll(); });
            m_relay->m_timer = &timer;
            ready.set_value();
            exec();
            m_relay->m_timer = nullptr;
            m_relay->m_context = nullptr;
        }
        ended.set_value();
    }

private:
    PoolRelay *const m_relay;
};

PoolRelay::PoolRelay(QIslePoolPrivate *pool) : m_pool(pool)
{
#ifdef Q_OS_UNIX
    int fds[2];
    if (::pipe(fds) != 0)
        qFatal("QIslePool: cannot make the relay's wake-up pipe");
    for (int fd : fds) {
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
        ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    m_wakeRead = fds[0];
    m_wakeWrite = fds[1];
#endif
    auto *thread = new RelayThread(this);
    std::future<void> ready = thread->ready.get_future();
    m_thread = thread;
    m_thread->setObjectName(QStringLiteral("QIslePool relay"));
    m_thread->start();
    ready.wait();
}

PoolRelay::~PoolRelay()
{
    stop();
    delete m_thread;
#ifdef Q_OS_UNIX
    ::close(m_wakeRead);
    ::close(m_wakeWrite);
#endif
}

void PoolRelay::post(std::function<void()> fn)
{
    const std::lock_guard<std::mutex> lock(m_postMutex);
    m_posted.push_back(std::move(fn));
    if (!m_wakePending) {
        m_wakePending = true;
#ifdef Q_OS_UNIX
        const char byte = 1;
        while (::write(m_wakeWrite, &byte, 1) < 0 && errno == EINTR) { }
#else
        if (m_context)
            QMetaObject::invokeMethod(m_context, [this] { runPosted(); }, Qt::QueuedConnection);
#endif
    }
}

void PoolRelay::runPosted()
{
#ifdef Q_OS_UNIX
    char buffer[64];
    while (::read(m_wakeRead, buffer, sizeof buffer) > 0) { }
#endif
    std::deque<std::function<void()>> posted;
    {
        const std::lock_guard<std::mutex> lock(m_postMutex);
        posted.swap(m_posted);
        m_wakePending = false;
    }
    for (auto &fn : posted)
        fn();
    poll(); // a new request, or a forwarded one: look now
}

void PoolRelay::poll()
{
    m_active.erase(std::remove_if(m_active.begin(), m_active.end(),
                                  [this](const std::shared_ptr<HeldRequest> &held) { return !relay(*held); }),
                   m_active.end());
    schedule();
}

void PoolRelay::schedule()
{
    if (!m_timer)
        return;
    if (m_active.empty()) {
        m_timer->stop();
        return;
    }
    const int interval = std::max(1, int(m_active.size()) / RequestsPerMs);
    if (!m_timer->isActive() || m_timer->interval() != interval)
        m_timer->start(interval);
}

bool PoolRelay::relay(HeldRequest &held)
{
    QFutureInterface<QVariant> &promise = held.promise;
    if (!held.attached) {
        if (promise.isFinished())
            return false; // failed or canceled by the pool
        if (promise.isCanceled())
            m_pool->heldCanceled(held); // finishes it, unless an isle took it meanwhile
        return true;
    }
    const QFuture<QVariant> &from = held.isleFuture;
    if (from.isFinished()) {
        // The isle's load dropped when its future finished, before this.
        finishFrom(promise, from, held.relayed);
        m_pool->heldFinished();
        return false;
    }
    if (promise.isCanceled()) {
        if (!held.cancelSent) {
            held.cancelSent = true;
            QFuture<QVariant>(from).cancel();
        }
        return true;
    }
    const bool suspend = promise.isSuspending() || promise.isSuspended();
    if (suspend != held.suspendSent) {
        held.suspendSent = suspend;
        QFuture<QVariant>(from).setSuspended(suspend);
    }
    // Emits and progress as they come. Emits are copied under the isle
    // future's lock: the worker empties the store of a failing request under
    // it too (isle/futurestore_p.h).
    held.relayed = relayEmits(promise, from, held.relayed);
    relayProgress(promise, from);
    return true;
}

void PoolRelay::adopt(QIsle *isle)
{
    QMutexLocker lock(&m_mutex);
    if (!m_running || isRelayThread())
        return; // shutting down: the isle is about to be destroyed where it is
    // Let go here, pull it there: objects without a thread may be pulled,
    // and the pull happens after the hand-off through post().
    isle->moveToThread(nullptr);
    auto done = std::make_shared<std::promise<void>>();
    std::future<void> moved = done->get_future();
    post([isle, done] {
        isle->moveToThread(QThread::currentThread());
        done->set_value();
    });
    moved.wait();
}

void PoolRelay::destroy(QIsle *isle)
{
    QMutexLocker lock(&m_mutex);
    if (!m_running || isRelayThread()) {
        lock.unlock();
        delete isle;
        return;
    }
    // Waits as QIsle's destructor does: running the calls scripts post to
    // this thread meanwhile (a script of the dying isle may wait for one
    // until its stop arrives).
    auto deleted = std::make_shared<std::atomic<bool>>(false);
    const std::shared_ptr<ThreadMailbox> waiter = ThreadMailbox::current();
    post([isle, deleted, waiter] {
        delete isle;
        deleted->store(true, std::memory_order_release);
        waiter->notify();
    });
    // Posted while running: the relay thread runs it, or stop() does after
    // the thread ended. Not held while waiting: a call run meanwhile may
    // reach the pool (and this relay) again.
    lock.unlock();
    waiter->waitUntil([&deleted] { return deleted->load(std::memory_order_acquire); });
}

void PoolRelay::watch(const std::shared_ptr<HeldRequest> &held)
{
    post([this, held] { m_active.push_back(held); });
}

void PoolRelay::forwarded(const std::shared_ptr<HeldRequest> &held, const QFuture<QVariant> &isleFuture)
{
    post([held, isleFuture] {
        held->isleFuture = isleFuture;
        held->attached = true;
    });
}

void PoolRelay::stop()
{
    {
        QMutexLocker lock(&m_mutex);
        if (!m_running)
            return;
        m_running = false;
    }
    std::future<void> ended = static_cast<RelayThread *>(m_thread)->ended.get_future();
    post([] { QThread::currentThread()->quit(); });
    ended.wait();
    m_thread->wait();
    // The thread is gone: finish what is left, from the isles' outcomes.
    runPosted();
    for (const auto &held : m_active) {
        if (held->attached && held->isleFuture.isFinished()) {
            finishFrom(held->promise, held->isleFuture, held->relayed);
        } else if (!held->promise.isFinished()) {
            held->promise.cancel();
            held->promise.reportFinished();
        }
    }
    m_active.clear();
}
