// SPDX-License-Identifier: GPL-2.0-or-later
// Unit tests of qmp_client (being written).
#include <doctest/doctest.h>
