// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "objects/signalhub_p.h"

#include "objects/mailbox_p.h"
#include "objects/objectref_p.h"

#include <QtCore/QHash>

namespace {

// Receives one signal through a direct connection to a method index past
// QObject's own (QSignalSpy's technique): qt_metacall gets the signal's
// argument array. Lives in the sender's thread; deleted with the sender.
class SignalRelay : public QObject
{
public:
    explicit SignalRelay(std::shared_ptr<SignalHub> hub) : m_hub(std::move(hub))
    {
        m_published.store(true, std::memory_order_release);
    }
    static int relayIndex() { return QObject::staticMetaObject.methodCount(); }

    int qt_metacall(QMetaObject::Call call, int id, void **arguments) override
    {
        id = QObject::qt_metacall(call, id, arguments);
        if (id < 0)
            return id;
        if (call == QMetaObject::InvokeMetaMethod) {
            // Emitted in any thread; Qt publishes the connection under its own
            // (uninstrumented) lock: this pair shows ThreadSanitizer the edge.
            if (id == 0 && m_published.load(std::memory_order_acquire))
                m_hub->emitted(arguments);
            --id;
        }
        return id;
    }

private:
    const std::shared_ptr<SignalHub> m_hub;
    std::atomic<bool> m_published{false};
};

struct HubKey
{
    const QObject *object;
    int signal;
    bool operator==(const HubKey &o) const { return object == o.object && signal == o.signal; }
};
size_t qHash(const HubKey &k, size_t seed = 0)
{
    return qHashMulti(seed, k.object, k.signal);
}

struct Hubs
{
    QMutex mutex;
    QHash<HubKey, std::shared_ptr<SignalHub>> byKey;
};

Hubs &hubs()
{
    static auto *h = new Hubs; // process lifetime: objects may outlive statics
    return *h;
}

} // namespace

// ---------------------------------------------------------------------------

SignalHandler::~SignalHandler() = default;

void SignalHandler::detach()
{
    std::shared_ptr<SignalHub> hub;
    {
        QMutexLocker lock(&m_mutex);
        hub = m_hub.lock();
        m_hub.reset();
    }
    if (hub)
        hub->remove(this);
}

bool SignalHandler::isAttached() const
{
    QMutexLocker lock(const_cast<QMutex *>(&m_mutex));
    return !m_hub.expired();
}

// ---------------------------------------------------------------------------

std::shared_ptr<SignalHub> SignalHub::of(QObject *object, int signalIndex, const QList<QMetaType> &params)
{
    Hubs &h = hubs();
    {
        QMutexLocker lock(&h.mutex);
        if (auto it = h.byKey.constFind(HubKey{object, signalIndex}); it != h.byKey.cend())
            return *it;
    }
    // Only this (the object's) thread makes hubs of this object: no race
    // between the look-up above and the insertion below.
    auto hub = std::make_shared<SignalHub>();
    hub->m_params = params;
    hub->m_sender = ObjectRef::make(object);
    auto *relay = new SignalRelay(hub);
    QMetaObject::connect(object, signalIndex, relay, SignalRelay::relayIndex(), Qt::DirectConnection);
    // After the relay's connection, so that a handler of `destroyed` itself
    // still hears it.
    const HubKey key{object, signalIndex};
    QObject::connect(object, &QObject::destroyed, [key, hub, relay] {
        {
            Hubs &h = hubs();
            QMutexLocker lock(&h.mutex);
            if (auto it = h.byKey.find(key); it != h.byKey.end() && *it == hub)
                h.byKey.erase(it);
        }
        hub->senderDestroyed();
        delete relay;
    });
    QMutexLocker lock(&h.mutex);
    h.byKey.insert(key, hub);
    return hub;
}

void SignalHub::attach(const std::shared_ptr<SignalHandler> &handler)
{
    {
        QMutexLocker lock(&handler->m_mutex);
        handler->m_hub = weak_from_this();
    }
    QMutexLocker lock(&m_mutex);
    if (m_dead) {
        lock.unlock();
        handler->senderDestroyed();
        return;
    }
    m_handlers.push_back(handler);
}

void SignalHub::remove(SignalHandler *handler)
{
    std::shared_ptr<SignalHandler> last; // released outside the lock
    QMutexLocker lock(&m_mutex);
    for (auto it = m_handlers.begin(); it != m_handlers.end(); ++it) {
        if (it->get() == handler) {
            last = std::move(*it);
            m_handlers.erase(it);
            break;
        }
    }
}

void SignalHub::emitted(void **arguments)
{
    std::vector<std::shared_ptr<SignalHandler>> handlers;
    {
        QMutexLocker lock(&m_mutex);
        if (m_handlers.empty())
            return;
        handlers = m_handlers;
    }
    QVariantList args;
    args.reserve(m_params.size());
    for (qsizetype i = 0; i < m_params.size(); ++i) {
        const QMetaType type = m_params.at(i);
        if (type == QMetaType::fromType<QVariant>())
            args.append(*static_cast<const QVariant *>(arguments[i + 1]));
        else if (type.flags().testFlag(QMetaType::PointerToQObject)
                 && *static_cast<QObject *const *>(arguments[i + 1]) == m_sender.address)
            args.append(QVariant::fromValue(m_sender));
        else
            args.append(QVariant(type, arguments[i + 1]));
    }
    // The objects among the arguments are alive now, in the emitter's hands.
    args = ObjectValues::weaken(args);
    for (const auto &handler : handlers)
        handler->deliver(args);
}

void SignalHub::senderDestroyed()
{
    std::vector<std::shared_ptr<SignalHandler>> handlers;
    {
        QMutexLocker lock(&m_mutex);
        m_dead = true;
        handlers.swap(m_handlers);
    }
    for (const auto &handler : handlers)
        handler->senderDestroyed();
}

// ---------------------------------------------------------------------------

void SignalWaiter::finish(End end, const QVariantList *args)
{
    if (end == End::Emitted)
        m_handOff->fulfil(QVariant(*args));
    else if (end == End::TimedOut)
        m_handOff->fulfil(QVariant());
    else
        m_handOff->fail(QIsleError(QIsleError::Kind::Runtime,
                                   QStringLiteral("the object was destroyed while waiting for its signal")));
}

void SignalWaiter::deliver(const QVariantList &args)
{
    finish(End::Emitted, &args);
}

void SignalWaiter::senderDestroyed()
{
    finish(End::Destroyed, nullptr);
}

void SignalWaiter::timeOut()
{
    finish(End::TimedOut, nullptr);
}
