// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
//  W A R N I N G
//  This file is not part of the QIsle API: an implementation detail that may
//  change without notice.
#pragma once

#include <QtCore/QMetaType>
#include <QtCore/QObject>
#include <QtCore/QPointer>
#include <QtCore/QThread>
#include <QtCore/QVariant>

class ClassInfo;

// A weak reference to a QObject, made where the object is known to be alive:
// in its own thread, or in the thread that hands it to QIsle (exposeObject,
// call arguments). It carries what the Lua thread needs without touching the
// object: its address (identity, never dereferenced off its thread), the
// thread it lived in and its class.
//
// Copyable from any thread (a QPointer copy only bumps an atomic count).
struct ObjectRef
{
    QPointer<QObject> object;
    QObject *address = nullptr;
    QThread *thread = nullptr;
    const ClassInfo *cls = nullptr;

    // o must be alive (and not being destroyed) for the whole call.
    static ObjectRef make(QObject *o);
};
Q_DECLARE_METATYPE(ObjectRef)

// Moving values that may hold QObject pointers between threads.
namespace ObjectValues {

// Whether a QVariant holds a pointer to a QObject (or any subclass).
inline bool isObjectPointer(const QVariant &v)
{
    return v.metaType().flags().testFlag(QMetaType::PointerToQObject);
}
inline QObject *objectPointer(const QVariant &v)
{
    return *static_cast<QObject *const *>(v.constData());
}

// Replaces every QObject pointer in v -- at the top, inside QVariantList,
// QVariantMap and QVariantHash, or a sequence of pointers such as
// QObjectList -- by an ObjectRef. Call it where those objects are alive.
QVariant weaken(const QVariant &v);
QVariantList weaken(const QVariantList &list);
// Back again, in the thread that uses the values: an ObjectRef becomes a
// QObject * (nullptr once the object is gone).
QVariant strengthen(const QVariant &v);
QVariantList strengthen(const QVariantList &list);

} // namespace ObjectValues
