// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#pragma once

#include <QtGui/QColor>
#include <QtWidgets/QWidget>

// The panel's application object: a canvas scripts draw on. Exposed to Lua
// as `canvas` (QIsle::exposeObject): its properties, enum, invokables, slot
// and signals are what a script sees, and every call runs here, in the GUI
// thread.
//
//     canvas.pen = "tomato"
//     canvas:add(canvas.Circle, 120, 80, 40)
//     canvas.clicked:connect(function(x, y) canvas:add(canvas.Square, x, y, 12) end)
class Canvas : public QWidget
{
    Q_OBJECT
    Q_PROPERTY(QColor pen READ pen WRITE setPen)
    Q_PROPERTY(QColor background READ background WRITE setBackground)
    Q_PROPERTY(int shapeCount READ shapeCount NOTIFY changed)

public:
    enum Shape { Circle, Square, Cross };
    Q_ENUM(Shape)

    explicit Canvas(QWidget *parent = nullptr);

    QColor pen() const { return m_pen; }
    void setPen(const QColor &pen) { m_pen = pen; }
    QColor background() const { return m_background; }
    void setBackground(const QColor &color);
    int shapeCount() const { return int(m_items.size()); }

    // A shape centred at (x, y), size pixels across, in the current pen.
    Q_INVOKABLE void add(Shape shape, int x, int y, int size);
    // Text whose baseline starts at (x, y).
    Q_INVOKABLE void addText(const QString &text, int x, int y);

    QSize sizeHint() const override { return {360, 300}; }

public Q_SLOTS:
    void clear();

Q_SIGNALS:
    void changed();
    // A mouse press on the canvas, in its coordinates.
    void clicked(int x, int y);

protected:
    void paintEvent(QPaintEvent *event) override;
    void mousePressEvent(QMouseEvent *event) override;

private:
    struct Item
    {
        enum Kind { ShapeItem, TextItem } kind;
        Shape shape;
        QPoint at;
        int size;
        QColor color;
        QString text;
    };
    QList<Item> m_items;
    QColor m_pen = QColor(0x1a, 0x73, 0xe8);
    QColor m_background = Qt::white;
};
