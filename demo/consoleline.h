// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#pragma once

#include <QtWidgets/QLineEdit>

// The console's input line: Return submits, Up/Down walk the history (the
// line being typed is kept while walking), Escape abandons an unfinished chunk.
class ConsoleLine : public QLineEdit
{
    Q_OBJECT
public:
    explicit ConsoleLine(QWidget *parent = nullptr);

    QStringList history() const { return m_history; }

Q_SIGNALS:
    void submitted(const QString &line);
    void abandoned();

protected:
    void keyPressEvent(QKeyEvent *event) override;

private:
    QStringList m_history;
    qsizetype m_position = 0; // == m_history.size(): the draft line
    QString m_draft;
};
