// SPDX-License-Identifier: GPL-2.0-or-later
// The doctest runner for all unit tests.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
