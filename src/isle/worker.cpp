// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "isle/worker_p.h"
#include "isle/fibers_p.h"
#include "isle/futurestore_p.h"

#include "async/channels_p.h"
#include "async/coroutines_p.h"
#include "lualib/islelib_p.h"
#include "isle/requestqueue_p.h"
#include "lualib/safety_p.h"
#include "luautil/luaexception_p.h"
#include "luautil/stackguard_p.h"
#include "values/value_p.h"

#include <QtCore/QThread>

#include <algorithm>
#include <cstring>

const QEvent::Type Worker::DrainEvent = QEvent::Type(QEvent::registerEventType());

namespace {
constexpr char DefaultChunkName[] = "=eval";
} // namespace

const QString &Worker::argumentPath(int i)
{
    static const QList<QString> names = [] {
        QList<QString> list;
        for (int n = 0; n < 32; ++n)
            list << QStringLiteral("args[%1]").arg(n);
        return list;
    }();
    if (i < names.size())
        return names.at(i);
    thread_local QString formatted;
    formatted = QStringLiteral("args[%1]").arg(i);
    return formatted;
}

Worker::RequestFiber *Worker::rootOf(Fiber *fiber)
{
    return fiber->isTask ? static_cast<TaskFiber *>(fiber)->root : static_cast<RequestFiber *>(fiber);
}

Worker::Worker(std::shared_ptr<RequestQueue> queue, const QIsleOptions &options, lua_State *prepared,
               std::shared_ptr<Allocator::Usage> usage)
    : m_queue(std::move(queue)), m_options(options),
      m_allocator(std::size_t(qMax<qsizetype>(0, options.memoryLimit)), std::move(usage)),
      m_scheduler([this] { drain(); }, [this] { stopSuspended(); })
{
    if (prepared) {
        m_allocator.adopt(prepared);
        m_L = prepared;
        m_standardOpen = true;
    } else {
        m_allocator.beginStartup(); // ended by startUp()
        m_L = lua_newstate(&Allocator::allocate, &m_allocator);
    }
    if (m_L) {
        m_context.attach(m_L);
        m_scheduler.attach(m_L);
    }
    if (m_options.timeSlice.count() > 0) {
        m_scheduler.setTimeSlice(m_options.timeSlice, [this] {
            return slotFree() && (!m_queue->held().empty() || m_queue->queuedCount() > 0);
        }, m_queue->othersReadyFlag());
        m_stop.setAfterCheck(&Scheduler::sliceHook);
    }
}

bool Worker::slotFree() const
{
    const int limit = m_options.maxConcurrentRequests;
    return limit <= 0 || m_topLevelActive < limit;
}

quint64 Worker::currentFiberSerial() const
{
    Fiber *f = m_scheduler.running();
    return f ? rootOf(f)->serial : 0;
}

Worker::~Worker()
{
    m_queue->setAbortWake({}); // before m_stop goes
    close();
}

void Worker::close()
{
    if (!m_L)
        return;
    // Closing runs __gc finalizers: no limit may make them fail half-way.
    m_allocator.setLimit(0);
    lua_close(m_L);
    m_L = nullptr;
}

bool Worker::event(QEvent *event)
{
    if (event->type() == DrainEvent) {
        drain();
        return true;
    }
    return QObject::event(event);
}

void Worker::drain()
{
    // An event loop nested in a request (host code that spins one) may
    // deliver this: the drain below on the stack goes on by itself.
    if (m_draining)
        return;
    m_draining = true;
    m_scheduler.setDraining(true);
    m_stop.burstBegin();
    for (;;) {
        if (Fiber *fiber = m_scheduler.takeReady()) {
            resume(fiber, -1);
            continue;
        }
        if (startNext())
            continue;
        // lowLatencySpin: before going back to sleep, look a while longer --
        // still marked busy, so callers post no wake-up meanwhile.
        const bool spin = m_options.lowLatencySpin.count() > 0;
        RequestQueue::Batch &batch = m_batch;
        m_queue->takeBatch(batch, !spin);
        if (batch.empty() && spin) {
            m_queue->spinForWork(m_options.lowLatencySpin);
            m_queue->takeBatch(batch);
        }
        if (batch.empty()) {
            if (m_scheduler.hasReady() || m_scheduler.releaseSliced())
                continue; // made ready just now (stopped at their waits), or after their slice
            // Idle: hand back what is gathered, so the next submit frees
            // it (a blocking caller's request among them); free them here
            // only when many are left, nobody having submitted since.
            m_queue->publishRetired();
            if (m_queue->retiredCount() > RetiredKeptIdle)
                m_queue->reapRetired();
            break;
        }
        // Not a look at every request here: each is touched first when it
        // starts (a batch may be large, and cold in this CPU's cache).
        m_pendingChildren += m_queue->takeChildCount();
        if (!m_shutdownSeen && batch.back()->type == Request::Type::Shutdown) { // always the last
            m_shutdownSeen = true;
            m_scheduler.setShutdownDeadline(m_queue->closedAt() + m_options.shutdownTimeout);
        }
        m_queue->hold(batch);
    }
    m_stop.burstEnd();
    m_scheduler.setDraining(false);
    m_draining = false;
}

// Starts the next request that may start; false when none may.
bool Worker::startNext()
{
    const RequestQueue::Held pending = m_queue->held();
    if (pending.empty())
        return false;
    if (m_queue->isAborted() && !m_abortSeen) {
        m_abortSeen = true;
        stopSuspended();
    }
    std::unique_ptr<Request> request;
    if (pending.front()->type == Request::Type::Shutdown) {
        if (!m_inProgress.empty())
            return false; // requests in progress end first (and their children)
        request = m_queue->unhold(pending.begin());
        m_stop.burstEnd();
        m_queue->markClosing();
        close();
        request->promise.finish();
        QThread::currentThread()->quit();
        return true;
    }
    if (slotFree()) {
        request = m_queue->unhold(pending.begin());
        prefetchHeld();
    } else if (m_pendingChildren > 0) {
        // A parent's turn covers its children: they start ahead of the queue.
        for (auto it = pending.begin(); it != pending.end(); ++it) {
            const quint64 parent = (*it)->parent;
            if (parent && std::any_of(m_inProgress.begin(), m_inProgress.end(),
                                      [parent](const RequestFiber *f) { return f->serial == parent; })) {
                request = m_queue->unhold(it);
                break;
            }
        }
    }
    if (!request)
        return false;
    if (request->parent)
        --m_pendingChildren;
    m_queue->leftWaiting();
    start(std::move(request));
    return true;
}

// A pipeline's requests were made on the submitting thread: their memory is
// in that CPU's cache, and the first read of each here waits for it. Asked
// for ahead of time, those reads overlap the requests before them (issue 18,
// row 4): the next request's arguments and future, the one after's request.
void Worker::prefetchHeld()
{
    const RequestQueue::Held pending = m_queue->held();
    auto it = pending.begin();
    if (it == pending.end())
        return;
    Request *next = it->get();
    if (!next->args.isEmpty())
        __builtin_prefetch(next->args.constData());
    // The future's shared state: resultStoreBase() only computes an
    // address inside it (reads none of it); the lines around it hold the
    // state, the mutex and the result store that settle() reads.
    const char *store = reinterpret_cast<const char *>(&next->state.resultStoreBase());
    for (int offset = -128; offset <= 128; offset += 64)
        __builtin_prefetch(store + offset);
    if (++it == pending.end())
        return;
    const char *after = reinterpret_cast<const char *>(it->get());
    for (std::size_t offset = 0; offset < sizeof(Request); offset += 64)
        __builtin_prefetch(after + offset);
}

// Every suspended fiber stops at its wait (the isle is being destroyed, or
// shutdown's deadline for waits passed): its future ends canceled.
void Worker::stopSuspended()
{
    for (Fiber *fiber : m_scheduler.suspendedFibers()) {
        fiber->own->cancel();
        m_scheduler.stop(fiber);
    }
}

void Worker::start(std::unique_ptr<Request> request)
{
    if (m_startupError) [[unlikely]] {
        if (!request->promise.isCanceled())
            FutureStore::reportFailure(request->state, QIsleError(m_startupError->kind(), m_startupError->message()));
        request->promise.finish();
        retire(std::move(request));
        return;
    }
    if (request->type == Request::Type::Exec || request->promise.isCanceled() || m_queue->isAborted() || !m_L) {
        run(*request); // never waits; or ends at once
        retire(std::move(request));
        return;
    }
    RequestFiber *f = nullptr;
    if (!m_idleFibers.empty()) {
        f = m_idleFibers.back();
        m_idleFibers.pop_back();
    } else {
        auto made = std::make_unique<RequestFiber>();
        f = made.get();
        m_fiberPool.push_back(std::move(made));
    }
    if (!f->thread) {
        // Made in a protected call: a memory error must not escape.
        lua_pushcfunction(m_L, [](lua_State *L) {
            auto *fiber = static_cast<RequestFiber *>(lua_touserdata(L, 1));
            fiber->thread = Scheduler::from(L).newThread(&fiber->ref);
            return 0;
        });
        lua_pushlightuserdata(m_L, f);
        if (lua_pcall(m_L, 1, 0, 0) != LUA_OK) {
            lua_pop(m_L, 1);
            m_idleFibers.push_back(f);
            request->promise.setException(QIsleError(QIsleError::Kind::Memory, QStringLiteral("not enough memory")));
            request->promise.finish();
            return;
        }
    }
    f->serial = m_nextSerial++;
    f->request = std::move(request);
    Request &r = *f->request;
    f->own = &r.state;
    f->runningState = {};
    f->runningState.promise = &r.promise;
    const auto timeout = timeoutOf(r);
    if (timeout.count() > 0)
        f->runningState.deadline = std::chrono::steady_clock::now() + timeout;
    f->running = &f->runningState;
    f->job.worker = this;
    f->job.request = &r;
    f->status = LUA_OK;
    f->child = r.parent && std::any_of(m_inProgress.begin(), m_inProgress.end(),
                                       [&r](const RequestFiber *a) { return a->serial == r.parent; });
    if (!f->child)
        ++m_topLevelActive;
    m_inProgress.push_back(f);
    f->state = Fiber::State::Running;
    lua_pushcfunction(f->thread, fiberMain);
    lua_pushlightuserdata(f->thread, f);
    resume(f, 1);
}

void Worker::resume(Fiber *fiber, int nargs)
{
    RequestFiber *root = rootOf(fiber);
    TaskFiber *task = fiber->isTask ? static_cast<TaskFiber *>(fiber) : nullptr;
    lua_State *co = fiber->thread;
    if (nargs < 0) {
        m_scheduler.resumed(fiber);
        nargs = 0;
        if (task && !task->started) {
            task->started = true;
            nargs = lua_gettop(co) - 1; // taskMain's: the handle, the function, its arguments
        }
    }
    RunningRequest &running = *fiber->running;
    if (task) // isle.emit numbers the request's results, whoever emits
        running.nextResultIndex = root->runningState.nextResultIndex;
    m_queue->setRunning(root->request.get(), running.deadline);
    if (running.canceled)
        m_queue->setRunningCanceled(true);
    m_scheduler.setRunning(fiber);
    if (m_options.timeSlice.count() > 0) {
        m_queue->setSlotFree(slotFree(), !m_queue->held().empty());
        m_queue->setSliceEnd(m_scheduler.sliceStart() + m_options.timeSlice);
    }
    m_error = task ? &task->error : &root->error;
    ++m_depth;
    watchIfStoppable(*root->request, running);
    m_stop.begin(running, co);

    int nresults = 0;
    int status = lua_resume(co, m_resumeFrom, nargs, &nresults);
    bool parked = false;
    if (status == LUA_YIELD) {
        if (m_scheduler.takeRuntimeYield()) {
            parked = true;
        } else {
            // Only C code can get here (coroutine.yield refuses at the top).
            lua_pushliteral(co, "attempt to yield from outside a coroutine");
            status = LUA_ERRRUN;
        }
    }
    if (!parked) {
        if (task)
            endTask(task, status);
        else
            endMain(root, status);
    }

    m_stop.end(running);
    if (!parked)
        running.emitted.sink.reset(); // an idle fiber must not keep the future and its results alive
    if (task)
        root->runningState.nextResultIndex = running.nextResultIndex;
    --m_depth;
    m_error = &m_execError;
    m_scheduler.setRunning(nullptr);
    m_queue->clearRunning();
    if (running.canceled)
        m_queue->setRunningCanceled(false);
    if (m_options.timeSlice.count() > 0)
        m_queue->setSliceEnd(std::chrono::steady_clock::time_point::max());

    if (parked) {
        if (!root->inProgressListed) {
            root->inProgressListed = true;
            m_queue->addInProgress(root->request.get());
        }
        m_scheduler.parked(fiber);
        return;
    }
    m_scheduler.finished(fiber);
    if (task) {
        root->tasks.erase(std::find(root->tasks.begin(), root->tasks.end(), task));
        task->root = nullptr;
        task->own = nullptr;
        task->running = nullptr;
        task->handle = nullptr;
        m_idleTasks.push_back(task);
    }
    if (root->mainDone && root->tasks.empty())
        completeRequest(root);
}

// The request's function ended, while its stop state is still current (a
// stop is the outcome whatever the script did after it).
void Worker::endMain(RequestFiber *f, int status)
{
    lua_State *co = f->thread;
    Request &request = *f->request;
    std::optional<QIsleError> error;
    bool reusable = true;
    if (status != LUA_OK) {
        // An error that escaped the request's own protected call (or a
        // yield at its top): keep the error object, close the thread's
        // pending to-be-closed variables.
        reusable = false;
        lua_xmove(co, m_L, 1);
        lua_resetthread(co);
        error = makeError(m_L, status, request);
        lua_pop(m_L, 1);
    } else if (f->status != LUA_OK) {
        error = makeError(co, f->status, request);
        if (f->status == LUA_ERRMEM || error->kind() == QIsleError::Kind::Memory)
            lua_gc(co, LUA_GCCOLLECT); // serve the next request with what can be freed
    }
    lua_settop(co, 0);
    if (!reusable) {
        m_scheduler.releaseThread(co, f->ref, false);
        f->thread = nullptr;
        f->ref = LUA_NOREF;
    }
    f->mainDone = true;
    f->mainError = std::move(error);
    if (f->mainError)
        f->error = {};
    // A request that fails or stops takes its tasks with it.
    if ((f->mainError || f->runningState.stop) && !f->tasks.empty())
        cancelGroup(f, nullptr);
}

// Every fiber of the group but `except` stops at its next wait (a task not
// started yet, before it starts); isle.canceled() is true in them.
void Worker::cancelGroup(RequestFiber *root, Fiber *except)
{
    if (!root->mainDone && root != except)
        m_scheduler.stopLocally(root);
    for (TaskFiber *task : root->tasks) {
        if (task != except)
            m_scheduler.stopLocally(task);
    }
}

// The request's function and all its tasks ended: its future finishes.
void Worker::completeRequest(RequestFiber *f)
{
    Request &request = *f->request;
    RunningRequest outcome = f->runningState;
    std::optional<QIsleError> error = f->mainError;
    if (!outcome.stop)
        outcome.stop = f->taskStop; // a stop that reached only its tasks (the function had returned)
    if (f->groupError && outcome.stop != QIsleError::Kind::Timeout && !request.promise.isCanceled()) {
        outcome.stop.reset(); // the function was canceled by the task's failure
        error = f->groupError;
    }
    settle(request, outcome, error, f->job.result);

    if (f->inProgressListed) {
        f->inProgressListed = false;
        m_queue->removeInProgress(&request);
    }
    m_inProgress.erase(std::find(m_inProgress.begin(), m_inProgress.end(), f));
    if (!f->child)
        --m_topLevelActive;
    std::unique_ptr<Request> done = std::move(f->request);
    f->own = nullptr;
    f->running = nullptr;
    f->job.request = nullptr;
    f->job.result.clear();
    f->mainDone = false;
    f->mainError.reset();
    f->groupError.reset();
    f->taskStop.reset();
    m_idleFibers.push_back(f);
    done->promise.finish();
    retire(std::move(done));
}

void Worker::retire(std::unique_ptr<Request> request)
{
    if (request->caller.done)
        request->caller.tell(); // as its destruction would have
    request->fn = nullptr;      // an exec closure's captures still end on this thread
    m_queue->retire(std::move(request));
}

std::chrono::milliseconds Worker::timeoutOf(const Request &request) const
{
    // request.timeout: > 0 its own, 0 the isle's, < 0 none (QIsleRequestOptions).
    return request.timeout.count() != 0 ? request.timeout : m_options.timeout;
}

// A request's coroutine: the request's function in a protected call with the
// message handler (as lua_pcall did for wave 1), but a yielding one, so waits
// pass through it. Only this one C function stands below the script, as
// below a main chunk run by the lua5.4 interpreter (tracebacks agree).
int Worker::fiberMain(lua_State *L)
{
    auto *f = static_cast<RequestFiber *>(lua_touserdata(L, 1));
    lua_settop(L, 0);
    lua_pushcfunction(L, messageHandler);
    Worker *self = f->job.worker;
    int nargs = 0;
    try {
        nargs = self->prepare(L, *f->job.request);
    } catch (const QIsleError &e) {
        self->raise(L, e.kind(), e.message());
    } catch (const std::bad_alloc &) {
        self->raise(L, QIsleError::Kind::Memory, QStringLiteral("not enough memory"));
    } catch (const std::exception &e) {
        self->raise(L, QIsleError::Kind::Callback, QString::fromLocal8Bit(e.what()));
    } catch (lua_longjmp *) {
        throw; // Lua's own error: it ends the coroutine (see finish())
    }
    const auto context = reinterpret_cast<lua_KContext>(f);
    const int status = lua_pcallk(L, nargs, 1, 1, context, finishFiberMain);
    return finishFiberMain(L, status, context);
}

int Worker::finishFiberMain(lua_State *L, int status, lua_KContext context)
{
    auto *f = reinterpret_cast<RequestFiber *>(context);
    if (status != LUA_OK && status != LUA_YIELD) {
        f->status = status;
        return 1; // the error object
    }
    f->status = LUA_OK;
    Worker *self = f->job.worker;
    try {
        f->job.result = Value::read(L, -1, QStringLiteral("result"));
    } catch (const QIsleError &e) {
        self->raise(L, e.kind(), e.message());
    } catch (const std::bad_alloc &) {
        self->raise(L, QIsleError::Kind::Memory, QStringLiteral("not enough memory"));
    } catch (lua_longjmp *) {
        throw;
    }
    return 0;
}

// The stop monitor watches a run that another thread may stop: a request
// whose future the caller holds (every spawn*: cancel, suspend), one with a
// deadline, time slices, a canceled task, an aborted isle. A blocking call
// with no timeout is stopped by nobody else (its future is private) but
// ~QIsle's abort, which wakes the monitor itself (RequestQueue::abort).
void Worker::watchIfStoppable(const Request &request, const RunningRequest &running)
{
    if (!request.caller.done || running.deadline != std::chrono::steady_clock::time_point::max()
        || running.canceled || m_options.timeSlice.count() > 0 || m_queue->isAborted()) {
        m_stop.watch();
    }
}

void Worker::runInline(Request &request)
{
    run(request);
}

void Worker::run(Request &request)
{
    QPromise<QVariant> &promise = request.promise;
    if (promise.isCanceled() || m_queue->isAborted() || !m_L) {
        if (!m_L)
            promise.setException(QIsleError(QIsleError::Kind::Shutdown, QStringLiteral("the isle is shut down")));
        promise.future().cancel(); // a queued request that is canceled never runs
        promise.finish();
        return;
    }

    RunningRequest running;
    running.promise = &request.promise;
    const auto timeout = timeoutOf(request);
    if (timeout.count() > 0)
        running.deadline = std::chrono::steady_clock::now() + timeout;

    const bool outermost = m_depth == 0;
    // A nested request's own deadline may come first: the stop monitor must
    // watch the earliest one (restored when the nested request ends).
    std::chrono::steady_clock::time_point outerDeadline;
    if (outermost) {
        m_queue->setRunning(&request, running.deadline);
        m_execError = {};
        m_error = &m_execError;
    } else {
        outerDeadline = m_queue->tightenDeadline(running.deadline);
    }
    ++m_depth;
    lua_State *L = activeState();
    watchIfStoppable(request, running);
    m_stop.begin(running, L);

    const int base = lua_gettop(L);
    Job job{this, &request, {}};
    lua_pushcfunction(L, messageHandler);
    lua_pushcfunction(L, protectedRun);
    lua_pushlightuserdata(L, &job);
    const int status = lua_pcall(L, 1, 0, base + 1);
    std::optional<QIsleError> error;
    if (status != LUA_OK) {
        error = makeError(L, status, request);
        if (status == LUA_ERRMEM || error->kind() == QIsleError::Kind::Memory)
            lua_gc(L, LUA_GCCOLLECT); // serve the next request with what can be freed
    }
    lua_settop(L, base);

    m_stop.end(running);
    --m_depth;
    if (outermost)
        m_queue->clearRunning();
    else
        m_queue->restoreDeadline(outerDeadline);

    settle(request, running, error, job.result);
    promise.finish();
}

// The promise's outcome (the caller finishes it).
void Worker::settle(Request &request, const RunningRequest &running, const std::optional<QIsleError> &error,
                    QVariant &result)
{
    QPromise<QVariant> &promise = request.promise;
    if (m_printRelay)
        m_printRelay->requestEnding(); // its prints reach printed before its end does
    if (running.stop == QIsleError::Kind::Cancelled) {
        promise.future().cancel(); // an outer request's cancel stops this one too
    } else if (running.stop == QIsleError::Kind::Timeout) {
        FutureStore::reportFailure(request.state,
                                   QIsleError(QIsleError::Kind::Timeout,
                                              QStringLiteral("request ran past its timeout of %1 ms")
                                                      .arg(timeoutOf(request).count())));
    } else if (error) {
        // A copy of its own: the future's error shares nothing with this
        // thread's, whose last reference may drop while a waiter reads it.
        FutureStore::reportFailure(request.state,
                                   QIsleError(error->kind(), error->message(), error->traceback(), error->line()));
    } else if (!request.caller.tellResult(result)) {
        promise.addResult(result, 0); // see isle.emit: announces index 0 itself
    }
}

// Everything a request does to the VM runs here, inside lua_pcall, so that
// neither a Lua error nor a memory error can escape unprotected. C++
// exceptions must not cross Lua's frames: they end here as Lua errors.
int Worker::protectedRun(lua_State *L)
{
    auto *job = static_cast<Job *>(lua_touserdata(L, 1));
    lua_pop(L, 1);
    Worker *self = job->worker;
    try {
        job->result = self->execute(L, *job->request);
    } catch (const QIsleError &e) {
        self->raise(L, e.kind(), e.message());
    } catch (const std::bad_alloc &) {
        self->raise(L, QIsleError::Kind::Memory, QStringLiteral("not enough memory"));
    } catch (const std::exception &e) {
        self->raise(L, QIsleError::Kind::Callback, QString::fromLocal8Bit(e.what()));
    } catch (lua_longjmp *) {
        throw; // Lua's own error: lua_pcall takes it
    } catch (...) {
        self->raise(L, QIsleError::Kind::Callback, QStringLiteral("unknown C++ exception"));
    }
    return 0;
}

QVariant Worker::execute(lua_State *L, Request &request)
{
    if (request.type == Request::Type::Exec)
        return request.fn(L);
    if (request.type == Request::Type::Shutdown)
        return {};
    lua_call(L, prepare(L, request), 1);
    return Value::read(L, -1, QStringLiteral("result"));
}

// Pushes what an eval or call request calls and its arguments; returns how
// many arguments.
int Worker::prepare(lua_State *L, Request &request)
{
    if (request.type == Request::Type::Eval) {
        const QByteArray &code = request.utf8;
        // "t": text only; precompiled chunks never load.
        const char *name = request.chunkName.isEmpty() ? DefaultChunkName : request.chunkName.constData();
        const int status = luaL_loadbufferx(L, code.constData(), size_t(code.size()), name, "t");
        if (status == LUA_ERRSYNTAX)
            raise(L, QIsleError::Kind::Syntax, QString::fromUtf8(lua_tostring(L, -1)));
        if (status != LUA_OK)
            lua_error(L);
        return 0;
    }
    return pushFunction(L, request);
}

int Worker::pushFunction(lua_State *L, Request &request)
{
    // Resolve a dotted path ("string.upper") with raw reads: resolving a
    // name must not run a script's metamethods. Compared as the caller gave
    // it: a literal's characters are read-only data, likely in this CPU's
    // cache already; made into UTF-8 here, only when the name changes.
    const QString &name = request.text;
    lua_pushglobaltable(L);
    const bool sameName = !name.isEmpty() && m_lastNameRef != LUA_NOREF && name == m_lastName;
    const QByteArray path = sameName ? QByteArray() : name.toUtf8();
    if (sameName || (!path.isEmpty() && !path.contains('.'))) {
        if (sameName) {
            lua_rawgeti(L, LUA_REGISTRYINDEX, m_lastNameRef);
        } else {
            lua_pushlstring(L, path.constData(), size_t(path.size()));
            lua_pushvalue(L, -1);
            if (m_lastNameRef == LUA_NOREF)
                m_lastNameRef = luaL_ref(L, LUA_REGISTRYINDEX);
            else
                lua_rawseti(L, LUA_REGISTRYINDEX, m_lastNameRef);
            // A deep copy: freed here, not where the caller made it.
            m_lastName = QString(name.constData(), name.size());
        }
        lua_rawget(L, -2);
        lua_remove(L, -2);
    } else {
        for (qsizetype start = 0; start <= path.size();) {
            qsizetype end = path.indexOf('.', start);
            if (end < 0)
                end = path.size();
            if (!lua_istable(L, -1) || end == start)
                raise(L, QIsleError::Kind::NotFound, QStringLiteral("no function '%1'").arg(request.text));
            lua_pushlstring(L, path.constData() + start, size_t(end - start));
            lua_rawget(L, -2);
            lua_remove(L, -2);
            start = end + 1;
        }
    }
    bool callable = lua_isfunction(L, -1);
    if (!callable && luaL_getmetafield(L, -1, "__call") != LUA_TNIL) {
        lua_pop(L, 1); // the __call field: lua_call uses it itself
        callable = true;
    }
    if (!callable)
        raise(L, QIsleError::Kind::NotFound, QStringLiteral("'%1' is not a function").arg(request.text));

    // Converting every argument before the call: a bad one runs nothing.
    luaL_checkstack(L, int(request.args.size()) + LUA_MINSTACK, "too many arguments");
    for (qsizetype i = 0; i < request.args.size(); ++i) {
        const QVariant &arg = request.args.at(i);
        if (!Value::pushScalar(L, arg)) // room checked above
            Value::push(L, arg, argumentPath(int(i) + 1));
    }
    return int(request.args.size());
}

void Worker::raise(lua_State *L, QIsleError::Kind kind, const QString &message)
{
    m_error->kind = kind;
    m_error->message = message;
    {
        const QByteArray utf8 = message.toUtf8();
        lua_pushlstring(L, utf8.constData(), size_t(utf8.size()));
    }
    lua_error(L);
    Q_UNREACHABLE(); // lua_error throws
}

// Runs where the error arose, before the stack unwinds: the only moment the
// traceback and the failing line can be read.
int Worker::messageHandler(lua_State *L)
{
    Worker *self = from(L);
    if (self->stopControl().stopping())
        return 1; // a stop needs no traceback
    const char *message = lua_type(L, 1) == LUA_TSTRING ? lua_tostring(L, 1) : nullptr;
    luaL_traceback(L, L, message, 1);
    self->m_error->traceback = QString::fromUtf8(lua_tostring(L, -1));
    lua_pop(L, 1);
    // The failing line: the innermost Lua function on the stack.
    lua_Debug ar;
    for (int level = 1; lua_getstack(L, level, &ar); ++level) {
        if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
            self->m_error->line = ar.currentline;
            break;
        }
    }
    return 1;
}

// "name:" as Lua writes it in front of an error of this request's chunk
// (luaO_chunkid: "=x" as is, "@file" shortened, source text as [string "..."]).
// Lua's own function computes it: load an empty chunk of that name.
QString Worker::chunkPrefix(lua_State *L, const Request &request)
{
    const char *name = request.chunkName.isEmpty() ? DefaultChunkName : request.chunkName.constData();
    if (!lua_checkstack(L, 2))
        return {};
    if (luaL_loadbufferx(L, "", 0, name, "t") != LUA_OK) {
        lua_pop(L, 1); // the memory error's message
        return {};
    }
    lua_Debug ar;
    lua_getinfo(L, ">S", &ar); // pops the function
    return QString::fromUtf8(ar.short_src) + QLatin1Char(':');
}

QIsleError Worker::makeError(lua_State *L, int status, const Request &request)
{
    using Kind = QIsleError::Kind;
    if (RunningRequest *running = m_stop.current(); running && running->stop)
        return QIsleError(*running->stop, QString());

    QString message;
    if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER) {
        size_t length = 0;
        const char *text = lua_tolstring(L, -1, &length);
        message = QString::fromUtf8(text, qsizetype(length));
    } else {
        message = Value::describeErrorObject(L, -1);
    }

    Kind kind = Kind::Runtime;
    if (status == LUA_ERRMEM)
        kind = Kind::Memory;
    else if (status == LUA_ERRSYNTAX)
        kind = Kind::Syntax;
    else if (m_error->kind && (message == m_error->message || message.endsWith(m_error->message)))
        kind = *m_error->kind; // raise()'s error, possibly prefixed by a position

    int line = m_error->line;
    // "name:7: message" naming this request's own chunk: the line moves into
    // line(), the message stays readable. Another chunk's prefix is kept.
    if (request.type == Request::Type::Eval) {
        const QString prefix = chunkPrefix(L, request);
        if (!prefix.isEmpty() && message.startsWith(prefix)) {
            const qsizetype colon = message.indexOf(QLatin1Char(':'), prefix.size());
            bool ok = false;
            const int prefixLine = message.mid(prefix.size(), colon - prefix.size()).toInt(&ok);
            if (colon > 0 && ok) {
                line = prefixLine;
                message = message.mid(colon + 1).trimmed();
            }
        }
    }
    return QIsleError(kind, message, kind == Kind::Syntax ? QString() : m_error->traceback, line);
}

void Worker::startUp(const std::function<void(lua_State *)> &more)
{
    if (!m_L) {
        m_startupError = QIsleError(QIsleError::Kind::Init, QStringLiteral("not enough memory"));
        return;
    }
    struct Call
    {
        Worker *self;
        const std::function<void(lua_State *)> *more;
    } call{this, &more};
    lua_gc(m_L, LUA_GCSTOP);
    lua_pushcfunction(m_L, [](lua_State *L) {
        const Call &call = *static_cast<const Call *>(lua_touserdata(L, 1));
        lua_pop(L, 1);
        // C++ exceptions end here, as Lua errors (raised outside the handler).
        QByteArray failure;
        try {
            call.self->openLibraries(L);
            if (*call.more)
                (*call.more)(L);
        } catch (const std::bad_alloc &) {
            failure = "not enough memory";
        } catch (const std::exception &e) {
            failure = e.what();
        }
        if (!failure.isNull()) {
            lua_pushlstring(L, failure.constData(), std::size_t(failure.size()));
            lua_error(L);
        }
        return 0;
    });
    lua_pushlightuserdata(m_L, &call);
    if (lua_pcall(m_L, 1, 0, 0) != LUA_OK) {
        const char *message = lua_tostring(m_L, -1);
        m_startupError = QIsleError(QIsleError::Kind::Init,
                                    message ? QString::fromUtf8(message) : QStringLiteral("not enough memory"));
        lua_pop(m_L, 1);
    }
    m_allocator.endStartup();
    lua_gc(m_L, LUA_GCRESTART);
}

void Worker::openLibraries(lua_State *L)
{
    StackGuard guard(L);
    if (!m_standardOpen) // else opened by QIsle::spawn with the state
        Safety::openLibraries(L, m_options.libraries);
    m_stop.install(L, m_options, [queue = m_queue.get()] { return queue->stopPending(); });
    m_queue->setAbortWake([stop = &m_stop] { stop->watchNow(); });
    IsleLib::open(L);
    openTasks(L);
    Channels::open(L);
    AsyncCoroutines::install(L);

    // Fibers are resumed "from" a thread that stays parked one C call deep:
    // a request's chunk then runs as deep in C calls as a main chunk under
    // the lua5.4 interpreter (which runs it inside a pcall'd pmain), so the
    // C stack limit a script meets is the same. (lua_resume only reads the
    // count of C calls of `from`; a yielded thread keeps its count.)
    m_resumeFrom = lua_newthread(L);
    luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushcfunction(m_resumeFrom, [](lua_State *T) { return lua_yield(T, 0); });
    int nresults = 0;
    lua_resume(m_resumeFrom, nullptr, 0, &nresults);
}
