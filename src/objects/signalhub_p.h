// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
//  W A R N I N G
//  This file is not part of the QIsle API: an implementation detail that may
//  change without notice.
#pragma once

#include <QIsle/qisleerror.h>

#include <QtCore/QFuture>
#include <QtCore/QMutex>
#include <QtCore/QObject>
#include <QtCore/QPromise>
#include <QtCore/QVariant>

#include "objects/mailbox_p.h"
#include "objects/objectref_p.h"

#include <atomic>
#include <memory>
#include <vector>

class SignalHub;

// Someone who listens to one signal of one object through QIsle: a Lua
// handler (obj.sig:connect) or a waiting script (obj.sig:wait). deliver()
// runs in the emitting thread -- any thread, several at once -- with the
// arguments already weakened (ObjectRef for QObject pointers).
class SignalHandler
{
public:
    virtual ~SignalHandler();
    virtual void deliver(const QVariantList &args) = 0;
    // The sender was destroyed (its thread, during its destruction).
    virtual void senderDestroyed() { }

    // Stops listening (any thread; idempotent).
    void detach();
    bool isAttached() const;

private:
    friend class SignalHub;
    QMutex m_mutex;
    std::weak_ptr<SignalHub> m_hub; // guarded by m_mutex
};

// The listeners of one signal of one object. One per (object, signal), made
// in the object's thread at the first connect or wait, kept until the object
// is destroyed: a relay QObject receives the signal through a direct
// connection and hands it to the listeners. The relay is deleted only with
// its sender, so no emission in another thread can reach a deleted receiver.
class SignalHub : public std::enable_shared_from_this<SignalHub>
{
public:
    // The object's thread: the hub of (object, signal method index),
    // made if needed. params: the signal's parameter types.
    static std::shared_ptr<SignalHub> of(QObject *object, int signalIndex, const QList<QMetaType> &params);

    void attach(const std::shared_ptr<SignalHandler> &handler);
    void remove(SignalHandler *handler);

    // The relay's side (emitting thread): every listener attached now.
    void emitted(void **arguments);
    // The object's thread, while the object is destroyed.
    void senderDestroyed();

private:
    QMutex m_mutex;
    std::vector<std::shared_ptr<SignalHandler>> m_handlers; // guarded by m_mutex
    bool m_dead = false;                                    // guarded by m_mutex
    QList<QMetaType> m_params;                              // immutable
    // The sender, referenced while it was alive: `destroyed` passes the
    // dying sender, to which no new weak reference may be made.
    ObjectRef m_sender;                                     // immutable
};

// obj.sig:wait(): the next emission, once. Its future's result 0 is the
// QVariantList of arguments.
class SignalWaiter : public SignalHandler
{
public:
    QFuture<QVariant> future() { return m_handOff->future(); }
    // The Lua thread's object that finishes the future there (HandOff).
    void setFinisher(QObject *finisher) { m_handOff->setFinisher(finisher); }
    void deliver(const QVariantList &args) override;
    void senderDestroyed() override;
    // No emission in time: result 0 is an invalid QVariant.
    void timeOut();

private:
    enum class End { Emitted, Destroyed, TimedOut };
    void finish(End end, const QVariantList *args);
    const std::shared_ptr<HandOff> m_handOff = std::make_shared<HandOff>();
};
