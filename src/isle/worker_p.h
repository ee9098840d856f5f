// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
//  W A R N I N G
//  This file is not part of the QIsle API: an implementation detail that may
//  change without notice.
#pragma once

#include "async/scheduler_p.h"
#include "lualib/allocator_p.h"
#include "isle/printrelay_p.h"
#include "luautil/statecontext_p.h"
#include "stop/stopcontrol_p.h"
#include "isle/request_p.h"

#include <QIsle/qisleoptions.h>

#include <QtCore/QEvent>
#include <QtCore/QObject>

#include <QIsle/QIsleLua>

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

class RequestQueue;

// Owns the lua_State and runs requests on it. Lives on the isle's QThread and,
// but for the constructor's caller and the thread-safe members named so, is
// touched by that thread only.
//
// Eval and call requests run as fibers: each on a Lua thread of its own
// (pooled), resumed with lua_resume, so a script that waits yields up to here
// and the Lua thread is free meanwhile (async/). Exec requests and requests
// nested on the Lua thread (a blocking call made by host code) run in one
// protected call on the running coroutine: they never wait.
class Worker : public QObject
{
    Q_OBJECT
public:
    static const QEvent::Type DrainEvent;
    // Finished requests an idle worker leaves for the next submitter to free.
    static constexpr int RetiredKeptIdle = 16;

    // prepared: a state QIsle::spawn made on its own thread meanwhile (handed
    // over, used by one thread at a time), with Safety's standard libraries
    // open; the worker adopts it. nullptr: the worker makes its own.
    // usage: the byte counter QIsle::usedMemory() reads (made by QIsle).
    Worker(std::shared_ptr<RequestQueue> queue, const QIsleOptions &options, lua_State *prepared = nullptr,
           std::shared_ptr<Allocator::Usage> usage = {});
    ~Worker() override;

    // The worker a state (or any coroutine of it) belongs to: zero-cost, it
    // sits in the state's extra space.
    static Worker *from(lua_State *L) { return StateContext::of(L)->worker; }

    lua_State *mainState() const { return m_L; }
    const QIsleOptions &options() const { return m_options; }
    StopControl &stopControl() { return m_stop; }
    Scheduler &scheduler() { return m_scheduler; }
    // The running fiber's serial (0: none): requests submitted now, on the
    // Lua thread, are its children (they may start while it waits).
    quint64 currentFiberSerial() const;
    Allocator &allocator() { return m_allocator; }

    // Runs a request now, nested in the one that is running: a blocking call
    // made on the Lua thread itself.
    void runInline(Request &request);
    // Runs what is queued and ready, until none is left (a DrainEvent, or
    // the thread's dispatcher asked by RequestQueue::wakeLocked).
    void drain();

    // Raises a Lua error whose kind is remembered: when it ends the request,
    // the QIsleError gets that kind (Callback, Conversion, NotFound, ...). The
    // error value stays a plain string, so pcall in scripts sees a message.
    [[noreturn]] void raise(lua_State *L, QIsleError::Kind kind, const QString &message);

    // The coroutine that runs host code now (host functions set it), so a
    // nested request runs on a running thread.
    lua_State *activeState() const { return m_active ? m_active : m_L; }
    void setActiveState(lua_State *L) { m_active = L; }

    // Before the first request, on the Lua thread: openLibraries() and then
    // `more` (QIsle's object library), protected, with the collector
    // stopped (everything made here stays alive: it would only walk it).
    // If that fails (out of memory, or no VM at all), every request fails
    // with the error, of kind Init: spawn() waited for that when it could
    // happen (see QIsle::spawn).
    void startUp(const std::function<void(lua_State *)> &more);

    // print(): to QIsle::printed through the relay (none: dropped).
    void setPrintRelay(PrintRelay *relay) { m_printRelay = relay; }
    void emitPrinted(const QString &text)
    {
        m_stop.flushResults(); // results emitted before this line reach the future before it is posted
        if (m_printRelay)
            m_printRelay->push(text);
    }

    // "args[i]", the root of a conversion error's path, without formatting
    // a string per call.
    static const QString &argumentPath(int i);

protected:
    bool event(QEvent *event) override;

private:
    // The standard libraries of the options (unless prepared), the stop
    // hook or signal, print, the isle table, tasks, channels, coroutines.
    void openLibraries(lua_State *L);
    struct Job;
    struct RequestFiber;
    struct TaskFiber;
    static int protectedRun(lua_State *L);
    static int messageHandler(lua_State *L);
    static int fiberMain(lua_State *L);
    static int finishFiberMain(lua_State *L, int status, lua_KContext context);

    void prefetchHeld();
    bool startNext();
    bool slotFree() const; // maxConcurrentRequests lets another request start
    void start(std::unique_ptr<Request> request);
    // Resumes a fiber: nargs for a request's start, -1 for a ready fiber.
    void resume(Fiber *fiber, int nargs);
    void endMain(RequestFiber *fiber, int status);
    void endTask(TaskFiber *task, int status);
    void completeRequest(RequestFiber *fiber);
    void cancelGroup(RequestFiber *root, Fiber *except);
    static RequestFiber *rootOf(Fiber *fiber);

    // isle.spawn and the methods of its tasks (tasks.cpp).
    void openTasks(lua_State *L);
    static int luaSpawn(lua_State *L);
    static int luaJoin(lua_State *L);
    static int finishJoin(lua_State *L, int status, lua_KContext context);
    static int luaCancel(lua_State *L);
    static int luaDone(lua_State *L);
    static int taskMain(lua_State *L);
    static int finishTaskMain(lua_State *L, int status, lua_KContext context);
    static int pushTaskOutcome(lua_State *L, TaskHandle *handle);
    void stopSuspended();
    void watchIfStoppable(const Request &request, const RunningRequest &running);
    void run(Request &request);
    // `result` is moved from when it goes straight to a blocked caller.
    void settle(Request &request, const RunningRequest &running, const std::optional<QIsleError> &error,
                QVariant &result);
    QVariant execute(lua_State *L, Request &request);
    int prepare(lua_State *L, Request &request);
    int pushFunction(lua_State *L, Request &request);
    QIsleError makeError(lua_State *L, int status, const Request &request);
    static QString chunkPrefix(lua_State *L, const Request &request);
    std::chrono::milliseconds timeoutOf(const Request &request) const;
    void close();
    // A request whose promise is finished: its caller told, handed back to
    // be freed by the next submitter (RequestQueue::retire).
    void retire(std::unique_ptr<Request> request);

    std::shared_ptr<RequestQueue> m_queue;
    const QIsleOptions m_options;
    Allocator m_allocator;
    lua_State *m_L = nullptr;
    std::vector<std::unique_ptr<Request>> m_batch; // RequestQueue::Batch, drain()'s, between takeBatch() and hold(): storage reused
    bool m_standardOpen = false; // a prepared state: Safety's libraries are open
    std::optional<QIsleError> m_startupError; // startUp() failed: every request fails with it
    lua_State *m_resumeFrom = nullptr; // see openLibraries()
    lua_State *m_active = nullptr;
    StopControl m_stop;
    PrintRelay *m_printRelay = nullptr; // the isle's; outlives the worker (shared with IsleThread)
    Scheduler m_scheduler;
    StateContext m_context{this, &m_stop, &m_scheduler};
    int m_depth = 0; // requests running (nested ones count too)
    // pushFunction: the last plain global name called and its Lua string,
    // kept in the registry (a pipeline calls one name over and over;
    // interning it again costs a hash and a string-table walk).
    QString m_lastName;
    int m_lastNameRef = LUA_NOREF;

    // Of the requests taken from the queue, not started yet (held in
    // RequestQueue::held(), so an abandoned VM's futures still finish):
    // those with a parent.
    int m_pendingChildren = 0;
    std::vector<RequestFiber *> m_inProgress; // fibers in progress (running, waiting, ready, held)
    int m_topLevelActive = 0;   // of them, those that count against maxConcurrentRequests
    std::vector<std::unique_ptr<RequestFiber>> m_fiberPool; // every fiber made; idle ones listed below
    std::vector<RequestFiber *> m_idleFibers;
    std::vector<std::unique_ptr<TaskFiber>> m_taskPool; // every task fiber made
    std::vector<TaskFiber *> m_idleTasks;
    quint64 m_nextSerial = 1;
    bool m_draining = false;
    bool m_abortSeen = false;
    bool m_shutdownSeen = false;

    // Filled by the message handler / raise() for the error being raised:
    // the running fiber's own, or, for exec requests, m_execError.
    struct ErrorRecord
    {
        QString traceback;
        int line = -1;
        std::optional<QIsleError::Kind> kind; // raise()'s kind ...
        QString message;                      // ... for this message
    };
    ErrorRecord m_execError;
    ErrorRecord *m_error = &m_execError;
};
