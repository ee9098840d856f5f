// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "objects/islelink_p.h"

#include "isle/request_p.h"
#include "isle/requestqueue_p.h"
#include "objects/objectlib_p.h"

#include <QIsle/qisle.h>

#include <QtCore/QCoreApplication>
#include <QtCore/QEvent>
#include <QtCore/QPointer>

namespace {

class FailureEvent : public QEvent
{
public:
    FailureEvent(QIsle *isle, const QIsleError &error)
        : QEvent(type()), m_isle(isle), m_error(error) { }
    ~FailureEvent() override
    {
        if (QIsle *isle = m_isle.data())
            Q_EMIT isle->handlerFailed(m_error);
    }
    static QEvent::Type type()
    {
        static const auto t = QEvent::Type(QEvent::registerEventType());
        return t;
    }

private:
    QPointer<QIsle> m_isle;
    QIsleError m_error;
};

} // namespace

IsleLink::IsleLink(QIsle *isle, const std::shared_ptr<RequestQueue> &queue)
    : m_isle(isle), m_queue(queue), m_queueIdentity(queue.get())
{
}

void IsleLink::queueHandler(int id, const QVariantList &args)
{
    std::shared_ptr<RequestQueue> queue = m_queue.lock();
    if (!queue)
        return;
    auto request = std::make_unique<Request>(Request::Type::Exec, QIsleRequestOptions{});
    request->fn = [id, args](lua_State *L) {
        ObjectLib::runHandler(L, id, args);
        return QVariant();
    };
    // Nobody else holds this future: its one continuation is ours, attached
    // before the request is queued. Sync: it runs where the request finished
    // (the Lua thread). A request dropped unrun ends canceled: no report.
    request->promise.future().then(QtFuture::Launch::Sync, [self = weak_from_this()](const QFuture<QVariant> &done) {
        try {
            QFuture<QVariant>(done).waitForFinished();
        } catch (const QIsleError &e) {
            if (std::shared_ptr<IsleLink> link = self.lock())
                link->reportFailure(e);
        } catch (...) {
        }
    });
    switch (queue->push(request)) {
    case RequestQueue::PushResult::Queued:
    case RequestQueue::PushResult::Closed: // shut down: the connection has ended
        return;
    case RequestQueue::PushResult::Full:
        request.reset();
        reportFailure(QIsleError(QIsleError::Kind::Busy,
                                 QStringLiteral("a signal handler was not queued: maxPending requests already wait")));
        return;
    }
}

void IsleLink::releaseHandler(int id)
{
    std::shared_ptr<RequestQueue> queue = m_queue.lock();
    if (!queue)
        return;
    auto request = std::make_unique<Request>(Request::Type::Exec, QIsleRequestOptions{});
    request->fn = [id](lua_State *L) {
        ObjectLib::releaseHandler(L, id);
        return QVariant();
    };
    queue->push(request); // closed: the VM goes with everything in it
}

void IsleLink::reportFailure(const QIsleError &error)
{
    QMutexLocker lock(&m_mutex);
    if (!m_isle)
        return;
    // Delivered in the QIsle's thread, as its other signals: an event the
    // QIsle ignores, whose destructor (after delivery, in that thread)
    // emits. Deleted with a QIsle destroyed first: the pointer is null then.
    QCoreApplication::postEvent(m_isle, new FailureEvent(m_isle, error));
}

void IsleLink::add(const std::shared_ptr<SignalHandler> &handler)
{
    QMutexLocker lock(&m_mutex);
    if (m_closed) {
        lock.unlock();
        handler->detach();
        return;
    }
    // Forget handlers that ended.
    m_handlers.erase(std::remove_if(m_handlers.begin(), m_handlers.end(),
                                    [](const std::weak_ptr<SignalHandler> &h) {
                                        auto s = h.lock();
                                        return !s || !s->isAttached();
                                    }),
                     m_handlers.end());
    m_handlers.push_back(handler);
}

void IsleLink::close()
{
    std::vector<std::weak_ptr<SignalHandler>> handlers;
    {
        QMutexLocker lock(&m_mutex);
        m_closed = true;
        handlers.swap(m_handlers);
    }
    for (const auto &weak : handlers) {
        if (std::shared_ptr<SignalHandler> handler = weak.lock())
            handler->detach();
    }
}

void IsleLink::forgetIsle()
{
    close();
    QMutexLocker lock(&m_mutex);
    m_isle = nullptr;
}

void LuaSignalHandler::deliver(const QVariantList &args)
{
    if (std::shared_ptr<IsleLink> link = m_link.lock())
        link->queueHandler(m_id, args);
}

void LuaSignalHandler::senderDestroyed()
{
    if (std::shared_ptr<IsleLink> link = m_link.lock())
        link->releaseHandler(m_id);
}
