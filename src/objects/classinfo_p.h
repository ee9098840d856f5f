// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
//  W A R N I N G
//  This file is not part of the QIsle API: an implementation detail that may
//  change without notice.
#pragma once

#include <QtCore/QByteArray>
#include <QtCore/QHash>
#include <QtCore/QList>
#include <QtCore/QMetaMethod>
#include <QtCore/QMetaObject>
#include <QtCore/QMetaType>

#include <memory>
#include <optional>
#include <vector>

// One callable of a class: a public slot, a Q_INVOKABLE or a signal.
struct MethodInfo
{
    int index = -1;           // absolute, as QMetaObject::metacall wants it
    QByteArray signature;     // "add(int,int)", for error messages
    QList<QMetaType> params;
    QMetaType returnType;     // invalid or Void: nothing
    bool cloned = false;      // made by moc for a default argument
    // Every parameter and the result of a plain type (int, uint, qlonglong,
    // double, bool; the result may be void): the hot path calls it with
    // arguments read straight from the Lua stack.
    bool fast = false;
};

// The key names of an enum or flag type (by value and by name).
struct EnumInfo
{
    QByteArray name;          // "Color"
    QByteArray scope;         // "Counter"
    bool isFlag = false;
    QList<QPair<QByteArray, qint64>> keys;

    // "Red", or for flags "Red|Blue"; nullopt when a name is not a key.
    std::optional<qint64> valueOf(const QByteArray &keys) const;
};

// What a name means on a class (QJSEngine's order: a property first, then
// methods, then signals, then enums and their keys).
struct MemberInfo
{
    enum class Kind { Property, Methods, Signal, Enum, EnumKey };
    Kind kind = Kind::Property;
    QByteArray name;
    QString path; // "Counter.value": for messages and conversion paths

    // Property
    int propertyIndex = -1;   // absolute
    // Types read without a QVariant on the hot path (an object in the Lua thread).
    enum class Fast : quint8 { None, Int, UInt, LongLong, Bool, Double, Float };
    Fast fast = Fast::None;
    QMetaType type;
    bool writable = false;
    const EnumInfo *enumType = nullptr; // an enum or flag property

    // Methods (overloads, declaration order) and Signal (the first one is
    // what connect/wait/emit use; moc's clones for default arguments last)
    std::vector<MethodInfo> methods;

    // Enum: its keys; EnumKey: the value
    const EnumInfo *enumInfo = nullptr;
    qint64 value = 0;
};

// What the Lua side knows of a class, read once from its QMetaObject and kept
// for the life of the process (QJSEngine's per-class cache). It holds no
// pointer into the meta-object, whose memory a dynamic meta-object (QML's)
// may free: indexes, names and types only. Immutable once built: any thread.
class ClassInfo
{
public:
    // Thread-safe; the meta-object must be alive during the call.
    static const ClassInfo *of(const QMetaObject *mo);

    // The name messages use: the class, or for a QML type its QML name
    // ("Button", not "Button_QMLTYPE_6").
    const QByteArray &className() const { return m_className; }
    // The meta-object's own class name (what inherits() compares).
    const QByteArray &metaClassName() const { return m_chain.constFirst(); }
    // nullptr: no such member.
    const MemberInfo *member(const QByteArray &name) const;
    // Whether this class is `className` or derives from it.
    bool inherits(const QByteArray &className) const { return m_chain.contains(className); }

private:
    void build(const QMetaObject *mo);
    const EnumInfo *enumFor(QMetaType type) const;

    QByteArray m_className;
    QByteArrayList m_chain; // this class and its bases
    QHash<QByteArray, MemberInfo> m_members;
    std::vector<std::unique_ptr<EnumInfo>> m_enums;
};

// The enum of an enum (or QFlags) meta-type, looked up through the enclosing
// class. nullptr when unknown.
const EnumInfo *enumInfoForType(QMetaType type);
