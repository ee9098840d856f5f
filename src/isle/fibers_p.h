// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
//  W A R N I N G
//  This file is not part of the QIsle API: an implementation detail that may
//  change without notice.
#pragma once

#include "isle/worker_p.h"

// The worker's fibers (worker.cpp, tasks.cpp). Lua thread only.

struct Worker::Job
{
    Worker *worker;
    Request *request;
    QVariant result;
};

// An eval or call request in progress, on a Lua thread of its own. With
// tasks (isle.spawn), the root of its group: the request ends once its
// function and all its tasks ended.
struct Worker::RequestFiber : Fiber
{
    std::unique_ptr<Request> request;
    RunningRequest runningState;
    Job job{nullptr, nullptr, {}};
    ErrorRecord error;
    int status = LUA_OK;  // of the request's protected call (fiberMain)
    bool child = false;   // started for a waiting parent: not counted against the limit
    std::vector<TaskFiber *> tasks;         // its tasks that have not ended
    bool mainDone = false;                  // its function ended (tasks may run on)
    std::optional<QIsleError> mainError;    // how its function ended, kept meanwhile
    std::optional<QIsleError> groupError;   // an unjoined task's failure
    std::optional<QIsleError::Kind> taskStop; // the request's stop, seen by a task
};

// An isle.spawn task: a fiber of its request's group, with a stop of its own
// (task:cancel(), its request's failure) on top of its request's.
struct Worker::TaskFiber : Fiber
{
    RequestFiber *root = nullptr;
    RunningRequest runningState; // the request's promise and deadline
    ErrorRecord error;
    int status = LUA_OK;         // of the task's protected call (taskMain)
    bool started = false;
    TaskHandle *handle = nullptr;
    std::vector<Fiber *> joiners; // fibers waiting in task:join()
};

