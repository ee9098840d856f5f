// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "pool/pool_p.h"

QIsleLease::QIsleLease() noexcept = default;

QIsleLease::QIsleLease(std::unique_ptr<QIsleLeasePrivate> d) noexcept : d(std::move(d)) { }

QIsleLease::QIsleLease(QIsleLease &&other) noexcept = default;

QIsleLease &QIsleLease::operator=(QIsleLease &&other) noexcept
{
    if (this != &other) {
        release();
        d = std::move(other.d);
    }
    return *this;
}

QIsleLease::~QIsleLease()
{
    release();
}

QIsle *QIsleLease::isle() const noexcept
{
    return d ? d->isle.get() : nullptr;
}

void QIsleLease::release()
{
    if (!d)
        return;
    const std::unique_ptr<QIsleLeasePrivate> lease = std::move(d);
    lease->pool->release(*lease);
}

void QIsleLease::discard()
{
    if (!d)
        return;
    const std::unique_ptr<QIsleLeasePrivate> lease = std::move(d);
    lease->pool->discard(*lease);
}
