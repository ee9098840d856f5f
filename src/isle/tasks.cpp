// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
// isle.spawn(fn, ...) and its tasks: fibers of the request that spawned
// them, interleaved with it at waits. Structured: a request ends once its
// function and all its tasks ended; an error of a task that nobody joins
// fails the request (the rest of the group is canceled); canceling a request
// cancels its tasks; task:cancel() stops one task, which is no error.
#include "isle/fibers_p.h"

#include "luautil/luaexception_p.h"
#include "luautil/stackguard_p.h"

#include <algorithm>

namespace {
constexpr char TaskType[] = "isle.task";

TaskHandle *checkTask(lua_State *L)
{
    return static_cast<TaskHandle *>(luaL_checkudata(L, 1, TaskType));
}
} // namespace

void Worker::openTasks(lua_State *L)
{
    StackGuard guard(L);
    if (lua_getglobal(L, "isle") == LUA_TTABLE) {
        lua_pushcfunction(L, luaSpawn);
        lua_setfield(L, -2, "spawn");
    }
    lua_pop(L, 1);
}

// isle.spawn(fn, ...) -> task. The task starts no later than the spawner's
// next wait or end.
int Worker::luaSpawn(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    Worker *self = Worker::from(L);
    Fiber *current = self->m_scheduler.running();
    if (!current)
        return luaL_error(L, "isle.spawn: tasks belong to an eval or call request (not to exec closures or init)");
    RequestFiber *root = rootOf(current);
    const int n = lua_gettop(L); // the function and its arguments

    luaL_checkstack(L, n + 2, "too many arguments");
    // The tasks' metatable, made by the first isle.spawn: an isle that never
    // spawns a task does not hold it (issue 18, row 7f).
    if (luaL_newmetatable(L, TaskType)) {
        static const luaL_Reg methods[] = {
            {"join", luaJoin},
            {"cancel", luaCancel},
            {"done", luaDone},
            {nullptr, nullptr},
        };
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
        lua_pushliteral(L, "locked");
        lua_setfield(L, -2, "__metatable");
    }
    auto *handle = static_cast<TaskHandle *>(lua_newuserdatauv(L, sizeof(TaskHandle), 1));
    new (handle) TaskHandle;
    lua_insert(L, -2);
    lua_setmetatable(L, -2);

    TaskFiber *task;
    if (!self->m_idleTasks.empty()) {
        task = self->m_idleTasks.back();
    } else {
        self->m_taskPool.push_back(std::make_unique<TaskFiber>());
        task = self->m_taskPool.back().get();
        task->isTask = true;
        self->m_idleTasks.push_back(task);
    }
    // Still listed idle: a memory error below leaves it to the pool.
    if (!task->thread)
        task->thread = self->m_scheduler.newThread(&task->ref);
    lua_State *T = task->thread;
    if (!lua_checkstack(T, n + 3))
        return luaL_error(L, "isle.spawn: too many arguments");
    self->m_idleTasks.pop_back();
    lua_pushcfunction(T, taskMain);
    lua_pushvalue(L, -1);
    lua_xmove(L, T, 1); // the handle: the task's stack keeps it (and its outcome) alive
    for (int i = 1; i <= n; ++i)
        lua_pushvalue(L, i);
    lua_xmove(L, T, n);

    handle->fiber = task;
    task->handle = handle;
    task->root = root;
    task->serial = self->m_nextSerial++;
    task->started = false;
    task->status = LUA_OK;
    task->error = {};
    task->joiners.clear();
    task->joining = nullptr;
    task->runningState = {};
    task->runningState.promise = &root->request->promise;
    task->runningState.deadline = root->runningState.deadline;
    task->running = &task->runningState;
    task->own = &root->request->state;
    root->tasks.push_back(task);
    self->m_scheduler.schedule(task);
    return 1;
}

// A task's coroutine: its function in a protected call with the message
// handler; the outcome goes into the handle's user value.
int Worker::taskMain(lua_State *L)
{
    auto *handle = static_cast<TaskHandle *>(lua_touserdata(L, 1));
    auto *task = static_cast<TaskFiber *>(handle->fiber);
    Scheduler &scheduler = Scheduler::from(L);
    if (task->wait.outcome == WaitState::Outcome::Stop) { // canceled before it started
        scheduler.clearWait();
        Scheduler::raiseStop(L);
    }
    StopControl::from(L).checkpoint(L); // its request may be stopping
    lua_pushcfunction(L, messageHandler);
    lua_insert(L, 2);
    const auto context = reinterpret_cast<lua_KContext>(task);
    const int status = lua_pcallk(L, lua_gettop(L) - 3, LUA_MULTRET, 2, context, finishTaskMain);
    return finishTaskMain(L, status, context);
}

int Worker::finishTaskMain(lua_State *L, int status, lua_KContext context)
{
    auto *task = reinterpret_cast<TaskFiber *>(context);
    TaskHandle *handle = task->handle;
    if (status == LUA_OK || status == LUA_YIELD) {
        task->status = LUA_OK;
        const int n = lua_gettop(L) - 2; // above the handle and the message handler
        lua_createtable(L, n, 1);
        for (int i = 1; i <= n; ++i) {
            lua_pushvalue(L, 2 + i);
            lua_rawseti(L, -2, i);
        }
        lua_pushinteger(L, n);
        lua_setfield(L, -2, "n");
        lua_setiuservalue(L, 1, 1);
        handle->end = TaskHandle::End::Returned;
        return 0;
    }
    task->status = status;
    if (task->runningState.stop) {
        handle->end = TaskHandle::End::Canceled;
    } else {
        lua_createtable(L, 1, 0);
        lua_pushvalue(L, -2);
        lua_rawseti(L, -2, 1);
        lua_setiuservalue(L, 1, 1);
        handle->end = TaskHandle::End::Failed;
    }
    return 1; // the error object
}

// A task ended (inside resume(), its stop state still current).
void Worker::endTask(TaskFiber *task, int status)
{
    RequestFiber *root = task->root;
    TaskHandle *handle = task->handle;
    lua_State *co = task->thread;
    if (status != LUA_OK) {
        // Escaped taskMain's protected call (no memory to keep its outcome).
        lua_resetthread(co);
        if (handle->end == TaskHandle::End::Running)
            handle->end = task->runningState.stop ? TaskHandle::End::Canceled : TaskHandle::End::Failed;
    }
    if (const auto stop = task->runningState.stop) {
        // Its request's stop (cancel, timeout) is the request's outcome too.
        if (*stop == QIsleError::Kind::Timeout || root->request->promise.isCanceled())
            root->taskStop = root->taskStop.value_or(*stop);
    } else if (handle->end == TaskHandle::End::Failed && task->joiners.empty() && !root->groupError
               && !root->runningState.stop && !root->request->promise.isCanceled()) {
        // Nobody joins it: the request fails with its error, as if its
        // function had raised it; the rest of the group is canceled.
        if (status == LUA_OK) {
            root->groupError = makeError(co, task->status, *root->request);
        } else {
            root->groupError = QIsleError(QIsleError::Kind::Memory, QStringLiteral("not enough memory"));
        }
        cancelGroup(root, task);
    }
    handle->fiber = nullptr;
    for (Fiber *joiner : task->joiners) {
        joiner->joining = nullptr;
        m_scheduler.wake(joiner);
    }
    task->joiners.clear();
    task->error = {};
    if (status == LUA_OK) {
        lua_settop(co, 0);
        if (lua_status(co) != LUA_OK) // cannot be: taskMain returned
            lua_resetthread(co);
    } else {
        m_scheduler.releaseThread(co, task->ref, false);
        task->thread = nullptr;
        task->ref = LUA_NOREF;
    }
}

// The outcome of an ended task: its results, its error again, or "canceled".
int Worker::pushTaskOutcome(lua_State *L, TaskHandle *handle)
{
    switch (handle->end) {
    case TaskHandle::End::Returned: {
        lua_getiuservalue(L, 1, 1);
        lua_getfield(L, -1, "n");
        const int n = int(lua_tointeger(L, -1));
        lua_pop(L, 1);
        luaL_checkstack(L, n, "too many results");
        const int table = lua_gettop(L);
        for (int i = 1; i <= n; ++i)
            lua_rawgeti(L, table, i);
        return n;
    }
    case TaskHandle::End::Failed:
        if (lua_getiuservalue(L, 1, 1) == LUA_TTABLE) {
            lua_rawgeti(L, -1, 1);
            return lua_error(L); // the same error object, again
        }
        return luaL_error(L, "the task failed (not enough memory to keep its error)");
    case TaskHandle::End::Canceled:
    case TaskHandle::End::Running:
        break;
    }
    return luaL_error(L, "the task was canceled");
}

// task:join() -> the task's results, or its error raised again.
int Worker::luaJoin(lua_State *L)
{
    TaskHandle *handle = checkTask(L);
    lua_settop(L, 1);
    if (handle->end != TaskHandle::End::Running)
        return pushTaskOutcome(L, handle);
    Scheduler &scheduler = Scheduler::from(L);
    Fiber *me = scheduler.running();
    Fiber *target = handle->fiber;
    // A join that would wait for itself, directly or through joins.
    for (Fiber *f = target; f; f = f->joining) {
        if (f == me)
            return luaL_error(L, f == target ? "cannot join: a task cannot join itself"
                                             : "cannot join: the tasks would wait for each other");
    }
    if (!scheduler.canWait(L))
        scheduler.raiseCannotWait(L, "task:join()");
    if (scheduler.mustNotWait(L))
        Scheduler::raiseStop(L);
    auto *task = static_cast<TaskFiber *>(target);
    task->joiners.push_back(me);
    me->joining = task;
    scheduler.waitExternal([task, me] {
        task->joiners.erase(std::remove(task->joiners.begin(), task->joiners.end(), me), task->joiners.end());
        me->joining = nullptr;
    });
    return scheduler.yield(L, finishJoin, 0);
}

int Worker::finishJoin(lua_State *L, int, lua_KContext)
{
    Scheduler &scheduler = Scheduler::from(L);
    scheduler.takeOutcome(L);
    return pushTaskOutcome(L, checkTask(L));
}

// task:cancel(): the task stops at its next wait (or, not started yet,
// before it starts), closing its <close> variables. No error of the request.
int Worker::luaCancel(lua_State *L)
{
    TaskHandle *handle = checkTask(L);
    if (handle->end != TaskHandle::End::Running)
        return 0;
    Scheduler &scheduler = Scheduler::from(L);
    Fiber *task = handle->fiber;
    if (task == scheduler.running()) { // a task canceling itself stops now
        RunningRequest *r = task->running;
        if (!r->stop) {
            r->stop = QIsleError::Kind::Cancelled;
            r->stopRaisedAt = std::chrono::steady_clock::now();
        }
        StopControl::from(L).raiseStop(L);
    }
    scheduler.stopLocally(task);
    return 0;
}

// task:done() -> whether it ended.
int Worker::luaDone(lua_State *L)
{
    lua_pushboolean(L, checkTask(L)->end != TaskHandle::End::Running);
    return 1;
}
