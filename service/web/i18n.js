/* Strings of the review page, zh-CN (default) and English. Plain script: defines window.SW_I18N. */
(function () {
  "use strict";
  // 数字城管 (national digital city-management) names of the violation kinds; codes are the defaults,
  // the case's own category_code (a city's override) is shown when the API gives one.
  var KINDS = {
    stall_occupation: { code: "0504", zh: "占道经营/店外经营", en: "Stall occupation / trading outside the shop" },
    bike_misparked: { code: "0506", zh: "非机动车乱停放", en: "Misparked bicycles" },
    illegal_structure: { code: "0101", zh: "私搭乱建", en: "Illegal structure" },
    mobile_vendor: { code: "0501", zh: "无照经营游商", en: "Unlicensed mobile vendor" }
  };
  var STRINGS = {
    zh: {
      title: "城管案件审核",
      langToggle: "English",
      keyLabel: "API 密钥",
      keyHint: "粘贴您的审核员 API 密钥（仅保存在本标签页中）。",
      signIn: "进入",
      signOut: "退出",
      filters: "筛选",
      camera: "摄像头",
      kind: "类别",
      all: "全部",
      from: "开始时间",
      to: "结束时间",
      apply: "应用",
      queue: "待审核案件",
      queueCount: "共 {n} 件",
      empty: "没有待审核的案件。",
      loading: "加载中…",
      caseTitle: "案件 #{id}",
      position: "第 {i} / {n} 件",
      zone: "区域",
      firstSeen: "首次发现",
      lastSeen: "最后发现",
      dwell: "持续时间",
      score: "置信度",
      category: "类别编码",
      address: "地址",
      status: "状态",
      crop: "目标截图",
      evidence: "取证图片",
      noEvidence: "无取证图片",
      confirm: "确认 (c)",
      reject: "驳回 (r)",
      changeClass: "更改类别",
      applyClass: "保存类别",
      prev: "上一件 (k)",
      next: "下一件 (j)",
      help: "快捷键 (?)",
      reasonLabel: "驳回理由（必填，回车提交，Esc 取消）",
      reasonRequired: "请填写驳回理由。",
      submitReject: "提交驳回",
      cancel: "取消",
      confirmed: "案件 #{id} 已确认。",
      rejected: "案件 #{id} 已驳回。",
      classChanged: "案件 #{id} 类别已改为 {kind}。",
      errorPrefix: "操作失败",
      badKey: "密钥无效或无权限：{msg}",
      helpTitle: "键盘快捷键",
      helpC: "确认当前案件",
      helpR: "驳回（输入理由后回车）",
      helpJ: "下一件",
      helpK: "上一件",
      helpQ: "显示/隐藏本帮助",
      helpEsc: "关闭理由框或帮助",
      close: "关闭",
      seconds: "{s} 秒",
      minutes: "{m} 分 {s} 秒",
      hours: "{h} 小时 {m} 分",
      st_pending: "待审核", st_confirmed: "已确认", st_rejected: "已驳回", st_merged: "已合并"
    },
    en: {
      title: "Case review",
      langToggle: "中文",
      keyLabel: "API key",
      keyHint: "Paste your reviewer API key (kept in this tab only).",
      signIn: "Enter",
      signOut: "Sign out",
      filters: "Filters",
      camera: "Camera",
      kind: "Kind",
      all: "All",
      from: "From",
      to: "To",
      apply: "Apply",
      queue: "Pending cases",
      queueCount: "{n} in total",
      empty: "No pending cases.",
      loading: "Loading…",
      caseTitle: "Case #{id}",
      position: "{i} of {n}",
      zone: "Zone",
      firstSeen: "First seen",
      lastSeen: "Last seen",
      dwell: "Dwell",
      score: "Score",
      category: "Category code",
      address: "Address",
      status: "Status",
      crop: "Crop",
      evidence: "Evidence",
      noEvidence: "No evidence image",
      confirm: "Confirm (c)",
      reject: "Reject (r)",
      changeClass: "Change class",
      applyClass: "Save class",
      prev: "Previous (k)",
      next: "Next (j)",
      help: "Shortcuts (?)",
      reasonLabel: "Reason for rejecting (required; Enter submits, Esc cancels)",
      reasonRequired: "A reason is required.",
      submitReject: "Reject",
      cancel: "Cancel",
      confirmed: "Case #{id} confirmed.",
      rejected: "Case #{id} rejected.",
      classChanged: "Case #{id} is now {kind}.",
      errorPrefix: "Failed",
      badKey: "Key refused: {msg}",
      helpTitle: "Keyboard shortcuts",
      helpC: "Confirm the case",
      helpR: "Reject (type a reason, Enter)",
      helpJ: "Next case",
      helpK: "Previous case",
      helpQ: "Show/hide this help",
      helpEsc: "Close the reason box or help",
      close: "Close",
      seconds: "{s} s",
      minutes: "{m} min {s} s",
      hours: "{h} h {m} min",
      st_pending: "pending", st_confirmed: "confirmed", st_rejected: "rejected", st_merged: "merged"
    }
  };
  function t(lang, key, params) {
    var table = STRINGS[lang] || STRINGS.zh;
    var text = key in table ? table[key] : (STRINGS.zh[key] || key);
    if (params) {
      Object.keys(params).forEach(function (name) { text = text.split("{" + name + "}").join(String(params[name])); });
    }
    return text;
  }
  function kindLabel(lang, kind, code) {
    var k = KINDS[kind];
    var name = k ? (lang === "en" ? k.en : k.zh) : kind;
    var c = code || (k && k.code);
    return c ? name + " (" + c + ")" : name;
  }
  window.SW_I18N = { KINDS: KINDS, STRINGS: STRINGS, t: t, kindLabel: kindLabel };
})();
