// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "canvas.h"

#include <QtGui/QMouseEvent>
#include <QtGui/QPainter>

Canvas::Canvas(QWidget *parent) : QWidget(parent)
{
    setObjectName(QStringLiteral("canvas"));
    setMinimumSize(200, 160);
}

void Canvas::setBackground(const QColor &color)
{
    m_background = color;
    update();
}

void Canvas::add(Shape shape, int x, int y, int size)
{
    m_items.append({Item::ShapeItem, shape, QPoint(x, y), qBound(1, size, 4000), m_pen, {}});
    update();
    Q_EMIT changed();
}

void Canvas::addText(const QString &text, int x, int y)
{
    m_items.append({Item::TextItem, Circle, QPoint(x, y), 0, m_pen, text});
    update();
    Q_EMIT changed();
}

void Canvas::clear()
{
    m_items.clear();
    update();
    Q_EMIT changed();
}

void Canvas::paintEvent(QPaintEvent *)
{
    QPainter p(this);
    p.setRenderHint(QPainter::Antialiasing);
    p.fillRect(rect(), m_background);
    for (const Item &item : std::as_const(m_items)) {
        p.setPen(QPen(item.color, 2));
        if (item.kind == Item::TextItem) {
            p.drawText(item.at, item.text);
            continue;
        }
        const int r = item.size / 2;
        const QRect box(item.at.x() - r, item.at.y() - r, item.size, item.size);
        switch (item.shape) {
        case Circle:
            p.setBrush(QColor(item.color.red(), item.color.green(), item.color.blue(), 60));
            p.drawEllipse(box);
            break;
        case Square:
            p.setBrush(QColor(item.color.red(), item.color.green(), item.color.blue(), 60));
            p.drawRect(box);
            break;
        case Cross:
            p.drawLine(box.topLeft(), box.bottomRight());
            p.drawLine(box.topRight(), box.bottomLeft());
            break;
        }
    }
}

void Canvas::mousePressEvent(QMouseEvent *event)
{
    const QPoint at = event->position().toPoint();
    Q_EMIT clicked(at.x(), at.y());
}
