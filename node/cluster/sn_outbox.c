/* sn_outbox: a FIFO under a mutex. A flush takes the whole queue, sends it, and puts the
 * frames of blocked peers back in front of what other threads queued meanwhile. */
#include "sn_outbox.h"
#include "sn_error.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sn_outbox {
    pthread_mutex_t mu;
    sn_out *head, *tail;
};

/* Copies s (NULL stays NULL) to *at, moving *at past it. */
static char *put_str(char **at, const char *s, size_t n)
{
    if (!s)
        return NULL;
    char *d = *at;
    memcpy(d, s, n + 1);
    *at += n + 1;
    return d;
}

/* One allocation holds the record, its strings and its payload: a queued frame costs one
 * malloc and one free on the message path, not seven. */
sn_out *sn_out_new(sn_out_kind kind, const char *node, const char *stage, const char *msg,
                   const char *reply, const char *src_stage, const char *text,
                   const void *payload, size_t len)
{
    const char *strs[5] = {stage, msg, reply, src_stage, text};
    if (len > SIZE_MAX / 2)
        return NULL;
    size_t lens[5], total = sizeof(sn_out) + len + 1;
    for (int i = 0; i < 5; i++) {
        lens[i] = strs[i] ? strlen(strs[i]) : 0;
        total += strs[i] ? lens[i] + 1 : 0;
    }
    sn_out *o = malloc(total);
    if (!o)
        return NULL;
    memset(o, 0, sizeof *o);
    o->kind = kind;
    snprintf(o->node, sizeof o->node, "%s", node);
    char *at = (char *)(o + 1);
    o->payload = at; /* first: the payload keeps malloc's alignment */
    if (len)
        memcpy(at, payload, len);
    at += len + 1;
    o->len = len;
    o->stage = put_str(&at, stage, lens[0]);
    o->msg = put_str(&at, msg, lens[1]);
    o->reply = put_str(&at, reply, lens[2]);
    o->src_stage = put_str(&at, src_stage, lens[3]);
    o->text = put_str(&at, text, lens[4]);
    return o;
}

void sn_out_free(sn_out *o)
{
    free(o);
}

sn_outbox *sn_outbox_new(void)
{
    sn_outbox *ob = calloc(1, sizeof *ob);
    if (ob)
        pthread_mutex_init(&ob->mu, NULL);
    return ob;
}

void sn_outbox_destroy(sn_outbox **op)
{
    if (!op || !*op)
        return;
    sn_outbox *ob = *op;
    while (ob->head) {
        sn_out *o = ob->head;
        ob->head = o->next;
        sn_out_free(o);
    }
    pthread_mutex_destroy(&ob->mu);
    free(ob);
    *op = NULL;
}

int sn_outbox_empty(sn_outbox *ob)
{
    pthread_mutex_lock(&ob->mu);
    int empty = ob->head == NULL;
    pthread_mutex_unlock(&ob->mu);
    return empty;
}

int sn_outbox_push(sn_outbox *ob, sn_out *o)
{
    o->next = NULL;
    pthread_mutex_lock(&ob->mu);
    int first = ob->head == NULL;
    if (ob->tail)
        ob->tail->next = o;
    else
        ob->head = o;
    ob->tail = o;
    pthread_mutex_unlock(&ob->mu);
    return first;
}

/* The nodes blocked in one flush: a growing array, so no number of peers is a limit. */
typedef struct blocked {
    char (*name)[SN_ROUTER_NODE_MAX];
    size_t n, cap;
} blocked;

static int is_blocked(const blocked *b, const char *node)
{
    for (size_t i = 0; i < b->n; i++) {
        if (strcmp(b->name[i], node) == 0)
            return 1;
    }
    return 0;
}

static void block(blocked *b, const char *node)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 8;
        void *p = realloc(b->name, cap * sizeof *b->name);
        if (!p)
            return; /* its later frames are tried (and kept) one by one: order still holds */
        b->name = p;
        b->cap = cap;
    }
    snprintf(b->name[b->n++], SN_ROUTER_NODE_MAX, "%s", node);
}

void sn_outbox_flush(sn_outbox *ob, int (*send)(sn_out *o, void *ud), void *ud)
{
    pthread_mutex_lock(&ob->mu);
    sn_out *o = ob->head;
    ob->head = ob->tail = NULL;
    pthread_mutex_unlock(&ob->mu);
    sn_out *keep = NULL, *keep_last = NULL;
    blocked b = {0};
    while (o) {
        sn_out *next = o->next;
        int held = is_blocked(&b, o->node);
        if (!held && send(o, ud) == SN_EFULL) {
            held = 1;
            block(&b, o->node);
        }
        if (held) {
            o->next = NULL;
            if (keep_last)
                keep_last->next = o;
            else
                keep = o;
            keep_last = o;
        } else {
            sn_out_free(o);
        }
        o = next;
    }
    free(b.name);
    if (keep) { /* back in front of what was queued meanwhile */
        pthread_mutex_lock(&ob->mu);
        keep_last->next = ob->head;
        ob->head = keep;
        if (!ob->tail)
            ob->tail = keep_last;
        pthread_mutex_unlock(&ob->mu);
    }
}

/* One node's frames in one flush. */
typedef struct group {
    sn_out *head, *tail;
} group;

/* Puts list (linked, ending at last) back in front of the queue. */
static void requeue(sn_outbox *ob, sn_out *list, sn_out *last)
{
    pthread_mutex_lock(&ob->mu);
    last->next = ob->head;
    ob->head = list;
    if (!ob->tail)
        ob->tail = last;
    pthread_mutex_unlock(&ob->mu);
}

void sn_outbox_flush_peers(sn_outbox *ob, sn_out *(*send)(sn_out *list, void *ud), void *ud)
{
    pthread_mutex_lock(&ob->mu);
    sn_out *o = ob->head;
    ob->head = ob->tail = NULL;
    pthread_mutex_unlock(&ob->mu);
    group one[8], *g = one; /* a few peers in the common case: no allocation */
    size_t n = 0, cap = sizeof one / sizeof *one, last = 0;
    while (o) {
        sn_out *next = o->next;
        o->next = NULL;
        size_t i = last < n && strcmp(g[last].head->node, o->node) == 0 ? last : 0;
        while (i < n && strcmp(g[i].head->node, o->node) != 0)
            i++;
        last = i;
        if (i == n && n == cap) {
            group *bigger = malloc(cap * 2 * sizeof *bigger);
            if (!bigger) { /* send what is grouped so far; the rest waits for the next flush */
                o->next = next;
                sn_out *end = o;
                while (end->next)
                    end = end->next;
                requeue(ob, o, end);
                break;
            }
            memcpy(bigger, g, n * sizeof *g);
            if (g != one)
                free(g);
            g = bigger;
            cap *= 2;
        }
        if (i == n)
            g[n++] = (group){o, o};
        else
            g[i].tail = g[i].tail->next = o;
        o = next;
    }
    sn_out *keep = NULL, *keep_last = NULL;
    for (size_t i = 0; i < n; i++) {
        sn_out *rest = send(g[i].head, ud);
        if (!rest)
            continue;
        if (keep_last)
            keep_last->next = rest;
        else
            keep = rest;
        for (keep_last = rest; keep_last->next;)
            keep_last = keep_last->next;
    }
    if (g != one)
        free(g);
    if (keep)
        requeue(ob, keep, keep_last);
}

int sn_outbox_accept_seq(sn_member *m, uint64_t inc, uint64_t seq, uint64_t *gap)
{
    *gap = 0;
    if (!seq)
        return 1;
    if (m->seq_in_inc != inc) {
        m->seq_in_inc = inc;
        m->seq_in = 0;
    }
    if (seq <= m->seq_in)
        return 0;
    *gap = seq - m->seq_in - 1;
    m->seq_in = seq;
    return 1;
}

/* Answers (REPLY, a lock's GRANT and DENY) go to a member believed down too: answers (REPLY, a lock's GRANT and DENY) go to a
 * member believed down too, because the request did arrive and its sender may well be alive
 * (a false suspicion); only a member that left, or a new incarnation, is gone for good. */
int sn_outbox_reachable(const sn_member *m, const sn_out *o)
{
    int answer = o->kind == SN_OUT_REPLY ||
                 (o->kind == SN_OUT_LOCK &&
                  (o->mode == SN_WIRE_LOCK_GRANT || o->mode == SN_WIRE_LOCK_DENY));
    if (m->state == SN_MEMBER_LEFT)
        return 0;
    if (answer)
        return !o->dst_inc || o->dst_inc == m->inc;
    return m->state != SN_MEMBER_DOWN;
}

void sn_outbox_frame(sn_out *o, const char *self, uint64_t self_inc, sn_member *m,
                     sn_wire_frame *f)
{
    if (o->kind == SN_OUT_MESSAGE) {
        sn_wire_frame_init(f, SN_WIRE_MESSAGE);
        sn_wire_message *w = &f->u.message;
        w->src = (sn_wire_addr){self, self_inc, o->actor, o->src_stage};
        w->dst = (sn_wire_addr){m->name, o->dst_inc, 0, o->stage};
        w->mode = (sn_wire_mode)o->mode;
        w->msg_id = o->msg;
        w->reply_id = o->reply ? o->reply : "";
        w->session = o->session;
        w->seq = ++m->seq_out;
        w->payload = (sn_wire_bytes){o->payload, o->len};
    } else if (o->kind == SN_OUT_CODE_MISS) {
        sn_wire_frame_init(f, SN_WIRE_CODE_MISS);
        memcpy(f->u.code_miss.hash, o->payload, 16);
    } else if (o->kind == SN_OUT_LOCK) {
        sn_wire_frame_init(f, (sn_wire_kind)o->mode);
        sn_wire_lock *k = &f->u.lock;
        int to_requester = o->mode == SN_WIRE_LOCK_GRANT || o->mode == SN_WIRE_LOCK_DENY;
        k->lock = o->stage;
        k->addr = (sn_wire_addr){to_requester ? m->name : self,
                                 to_requester ? o->dst_inc : self_inc, o->actor, ""};
        k->handler = o->msg ? o->msg : "";
        k->ms = o->ms;
        k->request = o->request;
        k->code = (uint32_t)o->status;
        k->text = o->text ? o->text : "";
        k->payload = (sn_wire_bytes){o->payload, o->len};
    } else {
        sn_wire_frame_init(f, SN_WIRE_REPLY);
        sn_wire_reply *r = &f->u.reply;
        r->dst = (sn_wire_addr){m->name, o->dst_inc, o->actor, ""};
        r->src = (sn_wire_addr){self, self_inc, o->from, o->stage};
        r->handler = o->reply;
        r->session = o->session;
        r->status = (sn_wire_status)o->status;
        r->error = o->text ? o->text : "";
        r->seq = ++m->seq_out;
        r->payload = (sn_wire_bytes){o->payload, o->len};
    }
}
