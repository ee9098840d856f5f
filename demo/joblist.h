// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#pragma once

#include <QtCore/QFuture>
#include <QtCore/QHash>
#include <QtCore/QVariant>
#include <QtWidgets/QWidget>

class QIsleJob;
class QLabel;
class QPushButton;
class QVBoxLayout;

// What runs now, one row each: the editor's script, console inputs, the
// application's downloads. A row shows a title, the job's progress and a
// Stop that cancels that job only; it goes when its job finishes. Each row
// follows its future through a QIsleJob.
//
//     QIsleJob *job = jobs->add("in[3]", "in[3]  isle.sleep(5000)", isle->spawnEval(...));
class JobList : public QWidget
{
    Q_OBJECT
public:
    explicit JobList(QWidget *parent = nullptr);

    // A row for future, named key (row objectName "job:<key>", its Stop
    // "stop"); the job (a child of the row) gives the future's notifications.
    QIsleJob *add(const QString &key, const QString &title, QFuture<QVariant> future);

    int count() const { return int(m_rows.size()); }
    // The keys of the rows, top to bottom.
    QStringList keys() const;
    // The Stop of a row, or nullptr.
    QPushButton *stopButton(const QString &key) const;

Q_SIGNALS:
    void countChanged(int count);

private:
    QVBoxLayout *m_layout = nullptr;
    QLabel *m_empty = nullptr;
    QHash<QString, QWidget *> m_rows;
};
