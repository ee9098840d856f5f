// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
//  W A R N I N G
//  This file is not part of the QIsle API: an implementation detail that may
//  change without notice.
#pragma once

#include <QIsle/qislejob.h>

#include <QtQml/qqml.h>

// QIsleJob lives in the core library, which must not depend on Qt Qml: it is
// made known to QML from here, as the uncreatable type Job.
struct QIsleJobForeign
{
    Q_GADGET
    QML_FOREIGN(QIsleJob)
    QML_NAMED_ELEMENT(Job)
    QML_UNCREATABLE("Jobs come from Isle.evaluate() and Isle.call().")
};
