// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
//  W A R N I N G
//  This file is not part of the QIsle API: an implementation detail that may
//  change without notice.
#pragma once

#include "objects/objectref_p.h"

#include <QIsle/qisle.h>

#include <QIsle/QIsleLua>

#include <memory>

class IsleLink;

// QObjects in Lua: one userdata kind for every QObject that reaches a script
// (exposed, a property's value, a method's result, a signal's argument, any
// QVariant holding a QObject pointer), its properties, methods, enums and
// signals, and functions that run in another thread (registerFunction with a
// context). Lua thread only.
namespace ObjectLib {

// At spawn, before init: what the objects of this VM share with other threads.
void open(lua_State *L, std::shared_ptr<IsleLink> link);

// Pushes the Lua value of an object: nil for none; while Lua references an
// object, always the same userdata.
void push(lua_State *L, const ObjectRef &ref);
// A pointer given on the Lua thread by code that holds it alive.
void push(lua_State *L, QObject *object);
// Whether the value at idx is an object; fills *ref (object may be gone).
bool toRef(lua_State *L, int idx, ObjectRef *ref);

// exposeObject: the global (dotted: tables made on the way).
void expose(lua_State *L, const QString &name, const ObjectRef &ref);
// registerFunction(name, context, fn): fn runs in context's thread.
void registerContextFunction(lua_State *L, const QString &name, const ObjectRef &context, QIsle::HostFunction fn);
// registerAsyncFunction(name, context, fn): fn runs in context's thread and
// gives a future; the script waits for the call, then for that future.
void registerAsyncContextFunction(lua_State *L, const QString &name, const ObjectRef &context,
                                  QIsle::AsyncHostFunction fn);

// A signal's Lua handler, as the request of one emission.
void runHandler(lua_State *L, int id, const QVariantList &args);
void releaseHandler(lua_State *L, int id);

} // namespace ObjectLib
