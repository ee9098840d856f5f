// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
//  W A R N I N G
//  This file is not part of the QIsle API: an implementation detail that may
//  change without notice.
#pragma once

#include "objects/classinfo_p.h"

#include <QtCore/QVariant>

#include <QIsle/QIsleLua>

// Lua values as arguments of methods and values of properties: how well a
// value matches a C++ type, the value converted, overloads chosen, and the
// call made. Converting and choosing run on the Lua thread (they read only
// the Lua stack and class data); invoke() runs in the object's thread.
namespace Arguments {

enum class Match { None = 0, Conversion = 1, Exact = 2 };

// The Lua value at idx for a parameter (or property) of type `type`: how
// well it matches and, when it does, the value in *out (of exactly that
// type; a QObject pointer travels as an ObjectRef until materialize()).
Match convert(lua_State *L, int idx, QMetaType type, QVariant *out);

// What a Lua value is called in messages: "integer", "string", "Counter".
QString describe(lua_State *L, int idx);

struct Chosen
{
    const MethodInfo *method = nullptr;
    QVariantList args; // converted, one per parameter
};

// Chooses the overload of `member` for the `count` Lua values from `first`:
// by count, then per argument an exact match beats a conversion; the
// overload at least as good on every argument and better on one wins.
// Throws QIsleError (Runtime) listing the candidates when none or several fit.
Chosen choose(lua_State *L, int first, int count, const MemberInfo &member, const QByteArray &className);

// The object's thread: the value of `type` to hand to C++ (an ObjectRef
// becomes the pointer; throws when that object was destroyed).
QVariant materialize(const QVariant &value, QMetaType type, const QString &where);

// The object's thread: calls the method; its result as a QVariant
// (invalid for void).
QVariant invoke(QObject *object, const MethodInfo &method, const QVariantList &args, const QString &where);

// A value read from C++ (property, result, signal argument) as Lua sees it:
// enums and flags as integers.
QVariant forLua(const QVariant &value);

} // namespace Arguments
