// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "isle/qisle_p.h"

#include "lualib/allocator_p.h"
#include "lualib/islelib_p.h"
#include "lualib/safety_p.h"
#include "isle/eventdispatcher_p.h"
#include "isle/worker_p.h"
#include "objects/islelink_p.h"
#include "objects/mailbox_p.h"
#include "objects/objectlib_p.h"

#include <QtCore/QAbstractEventDispatcher>
#include <QtCore/QDeadlineTimer>
#include <QtCore/QLoggingCategory>

#include <chrono>
#include <cstdint>
#include <thread>
#include <utility>
#include <vector>

#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

Q_LOGGING_CATEGORY(lcIsle, "qisle")

namespace {

// The worker of the isle whose Lua thread calls, or nullptr.
Worker *currentWorker()
{
    auto *thread = qobject_cast<IsleThread *>(QThread::currentThread());
    return thread ? thread->worker() : nullptr;
}

QFuture<QVariant> failedFuture(QIsleError::Kind kind, const QString &message)
{
    QPromise<QVariant> promise;
    promise.start();
    promise.setException(QIsleError(kind, message));
    promise.finish();
    return promise.future();
}

// Abandoned threads stay listed for the life of the process: their VMs are
// leaked on purpose, not lost (leak checkers see them as reachable).
void keepAbandoned(QThread *thread)
{
    static QMutex mutex;
    static auto *abandoned = new std::vector<QThread *>;
    QMutexLocker lock(&mutex);
    abandoned->push_back(thread);
}

} // namespace

namespace {

// How long each side of spawn() spins before it sleeps, waiting for the
// other: the state handed over, the request done.
constexpr std::chrono::microseconds HandOffSpin{100};

// Lua's standard libraries of the options (upvalue-free: the flags come as a
// light userdata), as Worker::openLibraries opens them first.
int openStandardLibraries(lua_State *L)
{
    Safety::openLibraries(L, *static_cast<const QIsleOptions::Libraries *>(lua_touserdata(L, 1)));
    return 0;
}

// spawn()'s head start: the VM and Lua's standard libraries, made on the
// calling thread while the isle's thread starts (issue 18, row 7e: the two
// took turns before, the thread's start then about 40 % of a spawn). The
// stop machinery, QIsle's own libraries and init still run on the Lua
// thread. Allocated through an Allocator with the isle's limit, so a limit
// too small fails here as it would there; then nothing is handed over and
// the Lua thread makes the VM itself, failing as spawn always did.
std::pair<lua_State *, std::unique_ptr<Allocator>> prepareState(const QIsleOptions &options,
                                                                 std::shared_ptr<Allocator::Usage> usage)
{
    auto allocator = std::make_unique<Allocator>(std::size_t(qMax<qsizetype>(0, options.memoryLimit)), std::move(usage));
    allocator->beginStartup(); // ended by Worker::startUp
    lua_State *L = lua_newstate(&Allocator::allocate, allocator.get());
    if (!L)
        return {};
    lua_gc(L, LUA_GCSTOP); // restarted by Worker::startUp
    lua_pushcfunction(L, openStandardLibraries);
    lua_pushlightuserdata(L, const_cast<QIsleOptions::Libraries *>(&options.libraries));
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        lua_close(L);
        return {};
    }
    return {L, std::move(allocator)};
}

// Lua thread, idle: gives the kernel back the pages of this thread's stack
// below the running frame. Spawning
// reaches deep (an event, a protected call, the libraries, init); an idle
// isle then needs only the event loop's few frames (issue 18, row 7f: 11.5
// KiB of stack per idle isle before, about 3 pages). Pages below the stack
// pointer hold nothing live; touched again, they come back zeroed.
void releaseStackBelowHere()
{
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) != 0)
        return;
    void *low = nullptr;
    std::size_t size = 0;
    const int status = pthread_attr_getstack(&attr, &low, &size);
    pthread_attr_destroy(&attr);
    if (status != 0)
        return;
    const std::uintptr_t page = std::uintptr_t(sysconf(_SC_PAGESIZE));
    // Below this frame: what is left of it, the red zone and madvise's own
    // call stay well within 1 KiB.
    volatile char mark = 0;
    const std::uintptr_t here = std::uintptr_t(&mark) - 1024;
    const std::uintptr_t begin = (std::uintptr_t(low) + page - 1) & ~(page - 1);
    const std::uintptr_t end = here & ~(page - 1);
    if (here > std::uintptr_t(low) && end > begin)
        madvise(reinterpret_cast<void *>(begin), end - begin, MADV_DONTNEED);
}

// Lua thread: releaseStackBelowHere() once the thread next waits for work,
// at the event loop's depth (the deepest frames an idle thread keeps).
void releaseStackWhenIdle()
{
    if (QAbstractEventDispatcher *dispatcher = QAbstractEventDispatcher::instance()) {
        QObject::connect(dispatcher, &QAbstractEventDispatcher::aboutToBlock, dispatcher, releaseStackBelowHere,
                         Qt::SingleShotConnection);
    }
}

} // namespace

IsleThread::IsleThread(std::shared_ptr<RequestQueue> queue, const QIsleOptions &options,
                       std::shared_ptr<PrintRelay> printRelay, std::shared_ptr<IsleLink> objects,
                       std::shared_ptr<std::atomic<std::size_t>> memoryUsage)
    : m_queue(std::move(queue)), m_options(options), m_printRelay(std::move(printRelay)),
      m_objects(std::move(objects)), m_memoryUsage(std::move(memoryUsage))
{
    setObjectName(options.threadName);
#ifdef QISLE_UNIX_DISPATCHER
    setEventDispatcher(new IsleEventDispatcher);
#endif
}

IsleThread::~IsleThread()
{
    // Under the mutex run() used: the thread's end orders these too, but
    // through Qt's join, which ThreadSanitizer does not see.
    std::lock_guard<std::mutex> lock(m_handOverMutex);
    if (m_prepared) // handed over, never taken: the thread did not run
        lua_close(m_prepared);
    m_preparedAllocator.reset();
}

void IsleThread::handOver(lua_State *prepared, std::unique_ptr<Allocator> allocator)
{
    {
        std::lock_guard<std::mutex> lock(m_handOverMutex);
        if (!m_handedOver) {
            m_handedOver = true;
            m_handedOverSeen.store(true, std::memory_order_release);
            m_prepared = std::exchange(prepared, nullptr);
            m_preparedAllocator = std::move(allocator);
        }
    }
    m_handedOverChanged.notify_one();
    if (prepared) // a second hand-over: not wanted
        lua_close(prepared);
}

void IsleThread::run()
{
    // The caller is usually a few microseconds from handing the state over:
    // a short spin spares this thread a sleep and the caller a wake-up
    // (10-30 us each on an idle virtual CPU).
    const auto spinEnd = std::chrono::steady_clock::now() + HandOffSpin;
    while (!m_handedOverSeen.load(std::memory_order_acquire) && std::chrono::steady_clock::now() < spinEnd)
        std::this_thread::yield();
    lua_State *prepared = nullptr;
    {
        std::unique_lock<std::mutex> lock(m_handOverMutex);
        m_handedOverChanged.wait(lock, [this] { return m_handedOver; });
        prepared = std::exchange(m_prepared, nullptr);
    }
    Worker worker(m_queue, m_options, prepared, m_memoryUsage);
    {
        std::lock_guard<std::mutex> lock(m_handOverMutex);
        m_preparedAllocator.reset(); // the worker allocates for the state now
    }
    worker.setPrintRelay(m_printRelay.get());
    m_worker = &worker;
    worker.startUp([objects = m_objects](lua_State *L) { ObjectLib::open(L, objects); });
    releaseStackWhenIdle(); // the libraries reached deep
#if defined(QISLE_UNIX_DISPATCHER) && defined(Q_OS_LINUX)
    // The dispatcher runs the drain itself: no event a wake-up.
    auto *dispatcher = static_cast<IsleEventDispatcher *>(eventDispatcher());
    dispatcher->setWork([&worker] { worker.drain(); });
    m_queue->attach(&worker, dispatcher);
#else
    m_queue->attach(&worker);
#endif
    exec();
    m_queue->attach(nullptr);
#if defined(QISLE_UNIX_DISPATCHER) && defined(Q_OS_LINUX)
    dispatcher->setWork({});
#endif
    m_worker = nullptr;
}

QIslePrivate::QIslePrivate(QIsle *q, const QIsleOptions &options)
    : q(q), options(options), queue(std::make_shared<RequestQueue>(options.maxPending)),
      printRelay(PrintRelay::create(q)), objects(std::make_shared<IsleLink>(q, queue)),
      memoryUsage(std::make_shared<std::atomic<std::size_t>>(0)), stopMode(StopControl::modeFor(options)),
      thread(new IsleThread(queue, options, printRelay, objects, memoryUsage))
{
}

QIslePrivate::~QIslePrivate()
{
    printRelay->detach(); // an abandoned Lua thread may still print
    if (!abandoned)
        delete thread;
}

QFuture<QVariant> QIslePrivate::submit(std::unique_ptr<Request> request)
{
    QFuture<QVariant> future = request->promise.future();
    // Submitted by code running for a request of this isle: its child,
    // which may start while it waits (a parent's turn covers its children).
    if (onLuaThread()) {
        if (Worker *worker = thread->worker())
            request->parent = worker->currentFiberSerial();
    }
    // Made on behalf of a script of this isle that waits for a call into
    // this thread: runs while the script waits, ahead of the queue.
    if (ThreadCalls::routeChild(queue.get(), request))
        return future;
    const RequestQueue::PushResult pushed = queue->push(request);
    // Requests the Lua thread finished: freed where they were made, and
    // after the push, while the Lua thread wakes up for this one.
    queue->reapRetired();
    switch (pushed) {
    case RequestQueue::PushResult::Queued:
        return future;
    case RequestQueue::PushResult::Closed:
        request.reset(); // its unfinished promise would cancel the future: fail it instead
        return failedFuture(QIsleError::Kind::Shutdown, QStringLiteral("the isle is shut down"));
    case RequestQueue::PushResult::Full:
        request.reset();
        return failedFuture(QIsleError::Kind::Busy,
                            QStringLiteral("%1 requests are already queued (maxPending)").arg(options.maxPending));
    }
    return future;
}

QVariant QIslePrivate::block(std::unique_ptr<Request> request)
{
    if (onLuaThread()) {
        // From a host function or exec closure: run now, nested, instead of
        // waiting for ourselves.
        // Refused only once the VM is gone or the isle is being destroyed:
        // requests drained by shutdown() may still make nested calls.
        if (Worker *worker = thread->worker(); worker && worker->mainState() && !queue->isAborted()) {
            QFuture<QVariant> future = request->promise.future();
            worker->runInline(*request);
            return QIsle::waitFor(future);
        }
        throw QIsleError(QIsleError::Kind::Shutdown, QStringLiteral("the isle is shut down"));
    }
    // The value comes straight from the request: no result store to fill
    // on the Lua thread and read here, and this thread is woken before the
    // promise is finished (issue 18, rows 3a, 6c).
    std::optional<QVariant> result;
    QFuture<QVariant> future = submitAndWait(std::move(request), options.lowLatencySpin, false, &result);
    if (result)
        return std::move(*result);
    return QIsle::waitFor(future);
}

QFuture<QVariant> QIslePrivate::submitAndWait(std::unique_ptr<Request> request, std::chrono::microseconds spin,
                                              bool yielding, std::optional<QVariant> *result)
{
    // Wakes this thread once the request is over: set before the request
    // is queued; told by whoever finishes it (Worker::retire), abandons it
    // or destroys it (its promise finished by then, on whatever path). Ordered for
    // ThreadSanitizer by `done` alone (Qt's own locks are not instrumented).
    std::atomic<bool> done{false};
    const std::shared_ptr<ThreadMailbox> mailbox = ThreadMailbox::current();
    request->caller.done = &done;
    request->caller.mailbox = mailbox;
    request->caller.result = result;
    QFuture<QVariant> future = submit(std::move(request));
    if (spin.count() > 0) {
        const auto end = std::chrono::steady_clock::now() + spin;
        while (!done.load(std::memory_order_acquire) && std::chrono::steady_clock::now() < end) {
            if (yielding)
                std::this_thread::yield();
        }
    }
    // Runs the calls scripts post to this thread meanwhile (no deadlock).
    if (!done.load(std::memory_order_acquire))
        mailbox->waitUntil([&done] { return done.load(std::memory_order_acquire); });
    return future;
}

void QIslePrivate::join(bool aborting)
{
    QMutexLocker lock(&joinMutex);
    if (joined)
        return;
    joined = true;
    if (onLuaThread()) {
        qCWarning(lcIsle, "QIsle shut down from its own Lua thread: the thread is left to finish alone");
        return;
    }
    const QDeadlineTimer abortDeadline = aborting ? QDeadlineTimer(options.shutdownTimeout)
                                                  : QDeadlineTimer(QDeadlineTimer::Forever);
    // Returns as soon as the thread ends; the slices only bound the checks.
    // Meanwhile it runs the calls scripts post to this thread (no deadlock).
    // (A posted call waits at most a slice here; the thread's end, none.)
    const std::shared_ptr<ThreadMailbox> mailbox = ThreadMailbox::current();
    while (!thread->wait(QDeadlineTimer(1))) {
        mailbox->runPosted();
        if (abortDeadline.hasExpired() || queue->closingFor() > options.shutdownTimeout) {
            // A __gc finalizer runs with hooks off and cannot be stopped.
            // Hanging the application's exit would be worse than leaking.
            qCWarning(lcIsle, "QIsle thread '%s' did not stop within %lld ms; abandoning its VM",
                      qPrintable(options.threadName), qlonglong(options.shutdownTimeout.count()));
            queue->abandon();
            abandoned = true; // the QThread object is leaked: it still runs
            keepAbandoned(thread);
            return;
        }
    }
    // The QThread object itself lives on until ~QIslePrivate: other threads
    // may still compare against it in onLuaThread().
}

QIsle::QIsle(const QIsleOptions &options) : d(std::make_unique<QIslePrivate>(this, options))
{
    d->thread->start();
}

std::unique_ptr<QIsle> QIsle::spawn(Init init, const QIsleOptions &options)
{
    std::unique_ptr<QIsle> isle(new QIsle(options)); // starts the thread
    auto [prepared, allocator] = prepareState(options, isle->d->memoryUsage);
    const bool made = prepared;
    isle->d->thread->handOver(prepared, std::move(allocator));
    // Nothing can fail on the Lua thread any more (QIsle's libraries need a
    // few KiB, with no limit): ready now. Requests queue until the thread
    // has opened the libraries (issue 18, row 7e: waiting for that thread
    // to be scheduled was about 40 % of a spawn).
    if (!init && made && options.memoryLimit <= 0)
        return isle;
    auto request = isle->d->execRequest([init = std::move(init)](lua_State *L) {
        if (init)
            init(L);
        releaseStackWhenIdle(); // init may have reached deep
        return QVariant();
    }, {});
    // Woken by the request's own end, as a blocking call is, not through a
    // watcher thread: one hand-off less. What is left after the hand-over
    // is short: spun for a while (yielding) before sleeping.
    QFuture<QVariant> future = isle->d->submitAndWait(std::move(request), 2 * HandOffSpin, true);
    try {
        waitFor(future);
    } catch (const QIsleError &e) {
        throw QIsleError(QIsleError::Kind::Init, e.message(), e.traceback(), e.line());
    }
    return isle;
}

QIsle::~QIsle()
{
    d->thread->handOver(nullptr, {}); // spawn() did, unless it failed before
    d->objects->forgetIsle(); // no handlerFailed from a QIsle being destroyed
    d->queue->abort();
    d->join(true);
}

// The one way a request is built: every eval/call/exec overload, blocking or
// not, goes through these three and then through submit() or block().
std::unique_ptr<Request> QIslePrivate::evalRequest(const QString &chunk, const QIsleRequestOptions &options)
{
    auto request = std::make_unique<Request>(Request::Type::Eval, options);
    request->text = chunk;
    request->utf8 = chunk.toUtf8();
    return request;
}

namespace {

// Arguments that can hold no QObject (scalars, strings, byte arrays): they
// need no walk to weaken references, the common case of a call.
bool holdsNoObjects(const QVariantList &args)
{
    for (const QVariant &v : args) {
        switch (v.typeId()) {
        case QMetaType::UnknownType:
        case QMetaType::Nullptr:
        case QMetaType::Bool:
        case QMetaType::Int:
        case QMetaType::UInt:
        case QMetaType::LongLong:
        case QMetaType::ULongLong:
        case QMetaType::Double:
        case QMetaType::Float:
        case QMetaType::QString:
        case QMetaType::QByteArray:
            continue;
        default:
            return false;
        }
    }
    return true;
}

} // namespace

std::unique_ptr<Request> QIslePrivate::callRequest(const QString &function, const QVariantList &args,
                                                   const QIsleRequestOptions &options)
{
    auto request = std::make_unique<Request>(Request::Type::Call, options);
    request->text = function; // in UTF-8 on the Lua thread, when the name changes (Worker::pushFunction)
    // QObjects among the arguments: referenced weakly now, in this thread.
    request->args = holdsNoObjects(args) ? args : ObjectValues::weaken(args);
    return request;
}

std::unique_ptr<Request> QIslePrivate::execRequest(QIsle::ExecFunction fn, const QIsleRequestOptions &options)
{
    auto request = std::make_unique<Request>(Request::Type::Exec, options);
    request->fn = std::move(fn);
    return request;
}

QVariant QIsle::eval(const QString &chunk)
{
    return d->block(d->evalRequest(chunk, {}));
}

QVariant QIsle::call(const QString &function, const QVariantList &args)
{
    return d->block(d->callRequest(function, args, {}));
}

QVariant QIsle::exec(ExecFunction fn)
{
    return d->block(d->execRequest(std::move(fn), {}));
}

QFuture<QVariant> QIsle::spawnEval(const QString &chunk)
{
    return d->submit(d->evalRequest(chunk, {}));
}

QFuture<QVariant> QIsle::spawnCall(const QString &function, const QVariantList &args)
{
    return d->submit(d->callRequest(function, args, {}));
}

QFuture<QVariant> QIsle::spawnExec(ExecFunction fn)
{
    return d->submit(d->execRequest(std::move(fn), {}));
}

QVariant QIsle::eval(const QString &chunk, const QIsleRequestOptions &options)
{
    return d->block(d->evalRequest(chunk, options));
}

QVariant QIsle::call(const QString &function, const QVariantList &args, const QIsleRequestOptions &options)
{
    return d->block(d->callRequest(function, args, options));
}

QVariant QIsle::exec(ExecFunction fn, const QIsleRequestOptions &options)
{
    return d->block(d->execRequest(std::move(fn), options));
}

QFuture<QVariant> QIsle::spawnEval(const QString &chunk, const QIsleRequestOptions &options)
{
    return d->submit(d->evalRequest(chunk, options));
}

QFuture<QVariant> QIsle::spawnCall(const QString &function, const QVariantList &args,
                                   const QIsleRequestOptions &options)
{
    return d->submit(d->callRequest(function, args, options));
}

QFuture<QVariant> QIsle::spawnExec(ExecFunction fn, const QIsleRequestOptions &options)
{
    return d->submit(d->execRequest(std::move(fn), options));
}

qsizetype QIsle::usedMemory() const
{
    return qsizetype(d->memoryUsage->load(std::memory_order_relaxed));
}

bool QIsle::currentRequestStopping()
{
    Worker *worker = currentWorker();
    if (!worker)
        return false;
    StopControl &stop = worker->stopControl();
    RunningRequest *running = stop.current();
    if (!running)
        return false;
    if (!running->stop)
        running->stop = stop.pendingStop();
    // Once seen, the stop is the request's outcome, even if the host
    // function returns normally and no hook check follows.
    return running->stop.has_value();
}

bool QIsle::checkpoint()
{
    Worker *worker = currentWorker();
    if (!worker)
        return false;
    if (RunningRequest *running = worker->stopControl().current()) {
        worker->stopControl().flushResults(); // a pause reports the emits before it
        running->promise->suspendIfRequested();
    }
    return currentRequestStopping();
}

void QIsle::registerFunction(const QString &name, HostFunction fn)
{
    auto request = d->execRequest([name, fn = std::move(fn)](lua_State *L) mutable {
        IsleLib::registerHostFunction(L, name, std::move(fn));
        return QVariant();
    }, {});
    if (d->onLuaThread()) {
        d->block(std::move(request));
        return;
    }
    QFuture<QVariant> future = d->submit(std::move(request));
    if (future.isFinished() && future.isCanceled())
        qCWarning(lcIsle, "registerFunction('%s'): the isle is shut down", qPrintable(name));
}

void QIsle::registerAsyncFunction(const QString &name, AsyncHostFunction fn)
{
    auto request = d->execRequest([name, fn = std::move(fn)](lua_State *L) mutable {
        IsleLib::registerAsyncHostFunction(L, name, std::move(fn));
        return QVariant();
    }, {});
    if (d->onLuaThread()) {
        d->block(std::move(request));
        return;
    }
    QFuture<QVariant> future = d->submit(std::move(request));
    if (future.isFinished() && future.isCanceled())
        qCWarning(lcIsle, "registerAsyncFunction('%s'): the isle is shut down", qPrintable(name));
}

void QIsle::registerFunction(const QString &name, QObject *context, HostFunction fn)
{
    if (!context) {
        registerFunction(name, std::move(fn));
        return;
    }
    const ObjectRef ref = ObjectRef::make(context); // weakly, now, in this thread
    auto request = d->execRequest([name, ref, fn = std::move(fn)](lua_State *L) mutable {
        ObjectLib::registerContextFunction(L, name, ref, std::move(fn));
        return QVariant();
    }, {});
    if (d->onLuaThread()) {
        d->block(std::move(request));
        return;
    }
    QFuture<QVariant> future = d->submit(std::move(request));
    if (future.isFinished() && future.isCanceled())
        qCWarning(lcIsle, "registerFunction('%s'): the isle is shut down", qPrintable(name));
}

void QIsle::registerAsyncFunction(const QString &name, QObject *context, AsyncHostFunction fn)
{
    if (!context) {
        registerAsyncFunction(name, std::move(fn));
        return;
    }
    const ObjectRef ref = ObjectRef::make(context); // weakly, now, in this thread
    auto request = d->execRequest([name, ref, fn = std::move(fn)](lua_State *L) mutable {
        ObjectLib::registerAsyncContextFunction(L, name, ref, std::move(fn));
        return QVariant();
    }, {});
    if (d->onLuaThread()) {
        d->block(std::move(request));
        return;
    }
    QFuture<QVariant> future = d->submit(std::move(request));
    if (future.isFinished() && future.isCanceled())
        qCWarning(lcIsle, "registerAsyncFunction('%s'): the isle is shut down", qPrintable(name));
}

void QIsle::exposeObject(const QString &name, QObject *object)
{
    const ObjectRef ref = ObjectRef::make(object); // weakly, now, in this thread
    auto request = d->execRequest([name, ref](lua_State *L) {
        ObjectLib::expose(L, name, ref);
        return QVariant();
    }, {});
    if (d->onLuaThread()) {
        d->block(std::move(request));
        return;
    }
    QFuture<QVariant> future = d->submit(std::move(request));
    if (future.isFinished() && future.isCanceled())
        qCWarning(lcIsle, "exposeObject('%s'): the isle is shut down", qPrintable(name));
}

void QIsle::shutdown()
{
    d->queue->close();
    d->objects->close(); // signal connections end with the isle
    d->join(false);
    // Lines the event loop would emit in slices go now: a program that ends
    // after its last blocking call (no event loop) still gets every print.
    // (An abandoned Lua thread may print on: its lines keep to the loop.)
    if (QThread::currentThread() == thread() && !d->onLuaThread() && !d->abandoned)
        d->printRelay->drain(this); // last: a slot may destroy this isle
}

bool QIsle::isAlive() const
{
    return !d->queue->isClosed();
}

QIsleOptions::StopMode QIsle::stopMode() const
{
    return d->stopMode;
}

QVariant QIsle::waitFor(QFuture<QVariant> future)
{
    // Runs the calls scripts post to this thread meanwhile (no deadlock).
    ThreadCalls::waitForFinished(future);
    future.waitForFinished(); // rethrows a stored QIsleError
    // A result 0 means the request completed: Qt 6.4 also flags a future
    // canceled when cancel() came after it finished.
    if (future.isResultReadyAt(0))
        return future.resultAt(0);
    // Qt 6.4: result() on a canceled future without a result is undefined.
    if (future.isCanceled())
        throw QIsleError(QIsleError::Kind::Cancelled, QStringLiteral("the request was canceled"));
    return {};
}
