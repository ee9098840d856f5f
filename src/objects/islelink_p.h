// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
//  W A R N I N G
//  This file is not part of the QIsle API: an implementation detail that may
//  change without notice.
#pragma once

#include "objects/signalhub_p.h"

#include <QIsle/qisleerror.h>

#include <QtCore/QMutex>
#include <QtCore/QVariant>

#include <memory>
#include <vector>

class QIsle;
class RequestQueue;

// What the objects of one isle share with other threads: the request queue
// (a signal's Lua handler runs as a request of its own, queued like
// spawnCall), the QIsle (handlerFailed) and the handlers to detach when the
// isle shuts down. Made by QIslePrivate; the Lua state holds it too.
//
// Any thread; guarded by m_mutex.
class IsleLink : public std::enable_shared_from_this<IsleLink>
{
public:
    IsleLink(QIsle *isle, const std::shared_ptr<RequestQueue> &queue);

    // The queue as an identity (child requests, ChildInbox).
    const void *queueIdentity() const { return m_queueIdentity; }

    // Emitting thread: queues handler `id` with these arguments.
    void queueHandler(int id, const QVariantList &args);
    // Any thread: the Lua function of handler `id` may go.
    void releaseHandler(int id);
    void reportFailure(const QIsleError &error);

    void add(const std::shared_ptr<SignalHandler> &handler);
    // shutdown(): every handler detached, nothing more queued.
    void close();
    // ~QIsle: close(), and no handlerFailed any more.
    void forgetIsle();

private:
    QMutex m_mutex;
    QIsle *m_isle;                                     // guarded; null once forgotten
    std::weak_ptr<RequestQueue> m_queue;
    const void *const m_queueIdentity;
    std::vector<std::weak_ptr<SignalHandler>> m_handlers; // guarded
    bool m_closed = false;                             // guarded
};

// obj.sig:connect(fn): each emission queues fn(args...) on the isle.
class LuaSignalHandler : public SignalHandler
{
public:
    LuaSignalHandler(std::weak_ptr<IsleLink> link, int id) : m_link(std::move(link)), m_id(id) { }
    void deliver(const QVariantList &args) override;
    void senderDestroyed() override;
    int id() const { return m_id; }

private:
    const std::weak_ptr<IsleLink> m_link;
    const int m_id;
};
