// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "objects/luawait_p.h"

#include "isle/request_p.h"
#include "isle/worker_p.h"
#include "luautil/luaexception_p.h"
#include "stop/stopcontrol_p.h"

#include <chrono>

namespace {

// How often a blocked Lua thread looks for a stop: as isle.sleep does.
constexpr std::chrono::milliseconds StopSlice{1};

void runChildren(Worker *worker, std::deque<std::unique_ptr<Request>> requests)
{
    for (auto &request : requests)
        worker->runInline(*request); // finishes its future whatever happens
}

} // namespace

bool LuaWait::block(lua_State *L, const QFuture<QVariant> &future, const std::function<void()> &cancel,
                    const std::shared_ptr<ChildInbox> &children, QDeadlineTimer deadline)
{
    Worker *worker = Worker::from(L);
    StopControl &stop = worker->stopControl();
    const std::shared_ptr<ThreadMailbox> mailbox = ThreadMailbox::current();
    const auto ready = [&] { return future.isFinished() || (children && children->hasRequests()); };
    const auto giveUp = [&] {
        if (cancel)
            cancel();
        if (children)
            children->close(); // what is left is dropped: its futures end canceled
    };
    for (;;) {
        QDeadlineTimer slice(StopSlice);
        if (deadline.deadlineNSecs() < slice.deadlineNSecs())
            slice = deadline;
        mailbox->waitUntil(ready, slice);
        if (children && children->hasRequests()) {
            runChildren(worker, children->take());
            continue;
        }
        if (future.isFinished()) {
            // The body has returned: no child comes after this.
            if (children)
                runChildren(worker, children->close());
            return true;
        }
        if (deadline.hasExpired()) {
            if (children)
                runChildren(worker, children->close());
            return false;
        }
        try {
            if (stop.stopping() || stop.pendingStop()) {
                giveUp();
                stop.checkpoint(L);
                if (stop.stopping())
                    stop.raiseStop(L);
            } else {
                stop.checkpoint(L); // parks while the request is suspended
            }
        } catch (lua_longjmp *) {
            giveUp();
            throw;
        }
    }
}

QVariant LuaWait::result(const QFuture<QVariant> &future, const QString &what)
{
    QFuture<QVariant> f = future;
    f.waitForFinished(); // rethrows a stored QIsleError
    if (f.isResultReadyAt(0))
        return f.resultAt(0);
    throw QIsleError(QIsleError::Kind::Runtime, QStringLiteral("%1 was canceled").arg(what));
}
