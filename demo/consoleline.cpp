// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "consoleline.h"

#include <QtGui/QKeyEvent>

ConsoleLine::ConsoleLine(QWidget *parent) : QLineEdit(parent) { }

void ConsoleLine::keyPressEvent(QKeyEvent *event)
{
    switch (event->key()) {
    case Qt::Key_Return:
    case Qt::Key_Enter: {
        const QString line = text();
        if (!line.trimmed().isEmpty() && (m_history.isEmpty() || m_history.constLast() != line))
            m_history.append(line);
        m_position = m_history.size();
        m_draft.clear();
        clear();
        Q_EMIT submitted(line);
        return;
    }
    case Qt::Key_Up:
        if (m_position > 0) {
            if (m_position == m_history.size())
                m_draft = text();
            setText(m_history.at(--m_position));
        }
        return;
    case Qt::Key_Down:
        if (m_position < m_history.size()) {
            ++m_position;
            setText(m_position == m_history.size() ? m_draft : m_history.at(m_position));
        }
        return;
    case Qt::Key_Escape:
        clear();
        Q_EMIT abandoned();
        return;
    default:
        QLineEdit::keyPressEvent(event);
    }
}
