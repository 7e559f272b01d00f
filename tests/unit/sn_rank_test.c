/* sn_rank: order (higher score first, ties by key), ranks, walks, tiers kept apart, the key
 * limit, and a long random run checked against a naive sorted array after every step. */
#include "sn_rank.h"
#include "sn_error.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct seen {
    char keys[16][16];
    int64_t scores[16];
    size_t ranks[16];
    size_t n;
} seen;

static int collect(void *ud, size_t rank, const char *key, int64_t score)
{
    seen *s = ud;
    snprintf(s->keys[s->n], sizeof s->keys[0], "%s", key);
    s->scores[s->n] = score;
    s->ranks[s->n] = rank;
    s->n++;
    return 0;
}

Test(sn_rank, orders_by_score_then_key)
{
    sn_rank *r = sn_rank_new(0);
    size_t rank = 0;
    cr_assert_eq(sn_rank_set(r, 0, "b", 10, &rank), SN_OK);
    cr_assert_eq(rank, 1);
    cr_assert_eq(sn_rank_set(r, 0, "a", 10, &rank), SN_OK);
    cr_assert_eq(rank, 1, "a ties b and sorts first by key");
    cr_assert_eq(sn_rank_set(r, 0, "c", 30, &rank), SN_OK);
    cr_assert_eq(rank, 1);
    cr_assert_eq(sn_rank_set(r, 0, "d", -5, &rank), SN_OK);
    cr_assert_eq(rank, 4);
    seen s = {0};
    cr_assert_eq(sn_rank_walk(r, 0, 1, 10, collect, &s), 4);
    cr_assert_str_eq(s.keys[0], "c");
    cr_assert_str_eq(s.keys[1], "a");
    cr_assert_str_eq(s.keys[2], "b");
    cr_assert_str_eq(s.keys[3], "d");
    cr_assert_eq(s.ranks[3], 4);
    /* moving a key: its old place goes */
    cr_assert_eq(sn_rank_set(r, 0, "d", 100, &rank), SN_OK);
    cr_assert_eq(rank, 1);
    cr_assert_eq(sn_rank_set(r, 0, "c", 0, &rank), SN_OK);
    cr_assert_eq(rank, 4);
    cr_assert_eq(sn_rank_count(r, 0), 4);
    int64_t score = 0;
    cr_assert_eq(sn_rank_get(r, 0, "a", &score, &rank), SN_OK);
    cr_assert_eq(score, 10);
    cr_assert_eq(rank, 2);
    cr_assert_eq(sn_rank_lower(r, 0, 10), 2);
    cr_assert_eq(sn_rank_lower(r, 0, 9), 4);
    cr_assert_eq(sn_rank_lower(r, 0, -100), 5);
    cr_assert_eq(sn_rank_remove(r, "a"), SN_OK);
    cr_assert_eq(sn_rank_remove(r, "a"), SN_ENOENT);
    cr_assert_eq(sn_rank_get(r, 0, "b", NULL, &rank), SN_OK);
    cr_assert_eq(rank, 2);
    s.n = 0;
    cr_assert_eq(sn_rank_walk(r, 0, 3, 10, collect, &s), 1);
    cr_assert_str_eq(s.keys[0], "c");
    cr_assert_eq(sn_rank_walk(r, 0, 4, 10, collect, &s), 0);
    sn_rank_destroy(&r);
    cr_assert_null(r);
    sn_rank_destroy(&r);
}

Test(sn_rank, tiers_are_separate_and_keys_stay_without_scores)
{
    sn_rank *r = sn_rank_new(0);
    cr_assert_eq(sn_rank_set(r, 0, "k", 5, NULL), SN_OK);
    cr_assert_eq(sn_rank_set(r, 3, "k", 7, NULL), SN_OK);
    cr_assert_eq(sn_rank_set(r, 3, "j", 9, NULL), SN_OK);
    cr_assert_eq(sn_rank_set(r, 4, "k", 7, NULL), SN_EINVAL);
    cr_assert_eq(sn_rank_count(r, 0), 1);
    cr_assert_eq(sn_rank_count(r, 1), 0);
    cr_assert_eq(sn_rank_count(r, 3), 2);
    size_t rank;
    cr_assert_eq(sn_rank_get(r, 3, "k", NULL, &rank), SN_OK);
    cr_assert_eq(rank, 2);
    cr_assert_eq(sn_rank_get(r, 1, "k", NULL, &rank), SN_ENOENT);
    cr_assert_eq(sn_rank_unset(r, 0, "k"), SN_OK);
    cr_assert_eq(sn_rank_unset(r, 0, "k"), SN_ENOENT);
    cr_assert(sn_rank_has(r, "k"));
    cr_assert_eq(sn_rank_touch(r, "v"), SN_OK);
    cr_assert_eq(sn_rank_keys(r), 3);
    cr_assert_eq(sn_rank_count(r, 0), 0);
    sn_rank_destroy(&r);
}

Test(sn_rank, the_key_limit_refuses_new_keys_only)
{
    sn_rank *r = sn_rank_new(2);
    cr_assert_eq(sn_rank_set(r, 0, "a", 1, NULL), SN_OK);
    cr_assert_eq(sn_rank_set(r, 0, "b", 2, NULL), SN_OK);
    cr_assert_eq(sn_rank_set(r, 0, "c", 3, NULL), SN_ELIMIT);
    cr_assert_eq(sn_rank_touch(r, "c"), SN_ELIMIT);
    cr_assert_eq(sn_rank_set(r, 1, "a", 3, NULL), SN_OK, "a known key takes a new tier");
    cr_assert_eq(sn_rank_keys(r), 2);
    sn_rank_destroy(&r);
}

/* The naive model: an array of (key, score) kept sorted by the board's order. */
typedef struct model {
    int present[500];
    int64_t score[500];
} model;

static size_t model_rank(const model *m, int k)
{
    size_t rank = 1;
    for (int j = 0; j < 500; j++) {
        if (!m->present[j] || j == k)
            continue;
        char a[16], b[16];
        snprintf(a, sizeof a, "k%d", j);
        snprintf(b, sizeof b, "k%d", k);
        if (m->score[j] > m->score[k] || (m->score[j] == m->score[k] && strcmp(a, b) < 0))
            rank++;
    }
    return rank;
}

typedef struct walk_check {
    const sn_rank *r;
    size_t last;
    int64_t prev;
} walk_check;

static int check_order(void *ud, size_t rank, const char *key, int64_t score)
{
    walk_check *w = ud;
    size_t got;
    cr_assert_eq(sn_rank_get(w->r, 0, key, NULL, &got), SN_OK);
    cr_assert_eq(got, rank, "walk says %zu, get says %zu for %s", rank, got, key);
    cr_assert(rank == 1 || w->prev >= score);
    w->prev = score;
    w->last = rank;
    return 0;
}

Test(sn_rank, random_run_matches_a_naive_model)
{
    sn_rank *r = sn_rank_new(0);
    model m = {0};
    srand(7);
    for (int step = 0; step < 20000; step++) {
        int k = rand() % 500, op = rand() % 10;
        char key[16];
        snprintf(key, sizeof key, "k%d", k);
        if (op < 7) {
            int64_t s = rand() % 100 - 50;
            size_t rank;
            cr_assert_eq(sn_rank_set(r, 0, key, s, &rank), SN_OK);
            m.present[k] = 1;
            m.score[k] = s;
            cr_assert_eq(rank, model_rank(&m, k), "step %d: set %s %lld", step, key,
                         (long long)s);
        } else if (op < 9) {
            int rc = sn_rank_remove(r, key);
            cr_assert_eq(rc, m.present[k] ? SN_OK : SN_ENOENT);
            m.present[k] = 0;
        } else if (m.present[k]) {
            size_t rank;
            cr_assert_eq(sn_rank_get(r, 0, key, NULL, &rank), SN_OK);
            cr_assert_eq(rank, model_rank(&m, k));
        }
    }
    size_t n = 0;
    for (int k = 0; k < 500; k++)
        n += (size_t)m.present[k];
    cr_assert_eq(sn_rank_count(r, 0), n);
    walk_check w = {r, 0, 0};
    cr_assert_eq(sn_rank_walk(r, 0, 1, 1000, check_order, &w), n);
    cr_assert_eq(w.last, n);
    sn_rank_destroy(&r);
}
