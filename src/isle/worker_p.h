// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
//  W A R N I N G
//  This file is not part of the QIsle API: an implementation detail that may
//  change without notice.
#pragma once

#include "lualib/allocator_p.h"
#include "luautil/statecontext_p.h"
#include "stop/stopcontrol_p.h"
#include "isle/request_p.h"

#include <QIsle/qisleoptions.h>

#include <QtCore/QEvent>
#include <QtCore/QObject>

#include <QIsle/QIsleLua>

#include <memory>
#include <optional>

class RequestQueue;

// Owns the lua_State and runs requests on it. Lives on the isle's QThread and,
// but for the constructor's caller and the thread-safe members named so, is
// touched by that thread only.
class Worker : public QObject
{
    Q_OBJECT
public:
    static const QEvent::Type DrainEvent;

    Worker(std::shared_ptr<RequestQueue> queue, const QIsleOptions &options);
    ~Worker() override;

    // The worker a state (or any coroutine of it) belongs to: zero-cost, it
    // sits in the state's extra space.
    static Worker *from(lua_State *L) { return StateContext::of(L)->worker; }

    lua_State *mainState() const { return m_L; }
    const QIsleOptions &options() const { return m_options; }
    StopControl &stopControl() { return m_stop; }
    Allocator &allocator() { return m_allocator; }

    // Runs a request now, nested in the one that is running: a blocking call
    // made on the Lua thread itself.
    void runInline(Request &request);

    // Raises a Lua error whose kind is remembered: when it ends the request,
    // the QIsleError gets that kind (Callback, Conversion, NotFound, ...). The
    // error value stays a plain string, so pcall in scripts sees a message.
    [[noreturn]] void raise(lua_State *L, QIsleError::Kind kind, const QString &message);

    // The coroutine that runs host code now (host functions set it), so a
    // nested request runs on a running thread.
    lua_State *activeState() const { return m_active ? m_active : m_L; }
    void setActiveState(lua_State *L) { m_active = L; }

    // Opens the standard libraries of the options, the stop hook, print and
    // the isle table. Called protected, by spawn()'s init request.
    void openLibraries(lua_State *L);

    void emitPrinted(const QString &text) { Q_EMIT printed(text); }

    // "args[i]", the root of a conversion error's path, without formatting
    // a string per call.
    static const QString &argumentPath(int i);

Q_SIGNALS:
    void printed(const QString &text);

protected:
    bool event(QEvent *event) override;

private:
    struct Job;
    static int protectedRun(lua_State *L);
    static int messageHandler(lua_State *L);

    void drain();
    void run(Request &request);
    QVariant execute(lua_State *L, Request &request);
    QVariant callFunction(lua_State *L, Request &request);
    QIsleError makeError(lua_State *L, int status, const Request &request);
    static QString chunkPrefix(lua_State *L, const Request &request);
    void close();

    std::shared_ptr<RequestQueue> m_queue;
    const QIsleOptions m_options;
    Allocator m_allocator;
    lua_State *m_L = nullptr;
    lua_State *m_active = nullptr;
    StopControl m_stop;
    StateContext m_context{this, &m_stop};
    int m_depth = 0; // requests running (nested ones count too)

    // Filled by the message handler / raise() for the error being raised.
    struct ErrorRecord
    {
        QString traceback;
        int line = -1;
        std::optional<QIsleError::Kind> kind; // raise()'s kind ...
        QString message;                      // ... for this message
    } m_error;
};
