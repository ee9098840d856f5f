// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "joblist.h"

#include <QIsle/qislejob.h>

#include <QtWidgets/QHBoxLayout>
#include <QtWidgets/QLabel>
#include <QtWidgets/QProgressBar>
#include <QtWidgets/QPushButton>
#include <QtWidgets/QVBoxLayout>

JobList::JobList(QWidget *parent) : QWidget(parent)
{
    setObjectName(QStringLiteral("jobs"));
    m_layout = new QVBoxLayout(this);
    m_layout->setContentsMargins(4, 4, 4, 4);
    m_layout->setSpacing(2);
    m_empty = new QLabel(tr("Nothing runs. Scripts, console inputs and downloads show here, each with its Stop."));
    m_empty->setWordWrap(true);
    m_empty->setEnabled(false);
    m_layout->addWidget(m_empty);
    m_layout->addStretch(1);
}

QIsleJob *JobList::add(const QString &key, const QString &title, QFuture<QVariant> future)
{
    auto *row = new QWidget(this);
    row->setObjectName(QStringLiteral("job:") + key);
    auto *layout = new QHBoxLayout(row);
    layout->setContentsMargins(0, 0, 0, 0);
    auto *label = new QLabel(row);
    label->setObjectName(QStringLiteral("title"));
    label->setText(title);
    label->setToolTip(title);
    label->setMinimumWidth(60);
    label->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    auto *bar = new QProgressBar(row);
    bar->setObjectName(QStringLiteral("progress"));
    bar->setRange(0, 0); // busy until the job reports a range
    bar->setMinimumWidth(80);
    auto *stop = new QPushButton(tr("Stop"), row);
    stop->setObjectName(QStringLiteral("stop"));
    layout->addWidget(label, 2);
    layout->addWidget(bar, 3);
    layout->addWidget(stop);

    auto *job = new QIsleJob(std::move(future), row);
    connect(job, &QIsleJob::progressMaximumChanged, bar, [bar](int maximum) { bar->setRange(0, maximum); });
    connect(job, &QIsleJob::progressChanged, bar, &QProgressBar::setValue);
    connect(job, &QIsleJob::progressTextChanged, bar, [bar](const QString &text) {
        bar->setFormat(text.isEmpty() ? QStringLiteral("%p%") : text);
    });
    connect(stop, &QPushButton::clicked, job, &QIsleJob::cancel);
    connect(job, &QIsleJob::finished, this, [this, key, row] {
        if (m_rows.value(key) == row)
            m_rows.remove(key);
        row->hide();
        row->deleteLater();
        m_empty->setVisible(m_rows.isEmpty());
        Q_EMIT countChanged(count());
    });

    if (QWidget *old = m_rows.value(key)) // a key used again: the old row's job ended
        old->setObjectName(QString());
    m_rows.insert(key, row);
    m_layout->insertWidget(m_layout->count() - 1, row); // above the stretch
    m_empty->hide();
    Q_EMIT countChanged(count());
    return job;
}

QStringList JobList::keys() const
{
    QStringList keys;
    for (int i = 0; i < m_layout->count(); ++i) {
        QWidget *w = m_layout->itemAt(i)->widget();
        const QString key = m_rows.key(w);
        if (w && !key.isEmpty())
            keys << key;
    }
    return keys;
}

QPushButton *JobList::stopButton(const QString &key) const
{
    QWidget *row = m_rows.value(key);
    return row ? row->findChild<QPushButton *>(QStringLiteral("stop")) : nullptr;
}
