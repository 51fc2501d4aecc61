/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Intrusive doubly linked lists in the style of systemd's list.h. */

#define LIST_FIELDS(t, name) t *name##_next, *name##_prev

#define LIST_PREPEND(name, head, item)                                  \
        do {                                                            \
                (item)->name##_next = (head);                           \
                (item)->name##_prev = NULL;                             \
                if (head)                                               \
                        (head)->name##_prev = (item);                   \
                (head) = (item);                                        \
        } while (0)

#define LIST_REMOVE(name, head, item)                                   \
        do {                                                            \
                if ((item)->name##_next)                                \
                        (item)->name##_next->name##_prev = (item)->name##_prev; \
                if ((item)->name##_prev)                                \
                        (item)->name##_prev->name##_next = (item)->name##_next; \
                else if ((head) == (item))                              \
                        (head) = (item)->name##_next;                   \
                (item)->name##_next = (item)->name##_prev = NULL;       \
        } while (0)

#define LIST_FOREACH(name, i, head) for (__typeof__(head) i = (head); i; i = i->name##_next)
#define LIST_FOREACH_SAFE(name, i, n, head) \
        for (__typeof__(head) i = (head), n = i ? i->name##_next : NULL; i; i = n, n = i ? i->name##_next : NULL)
